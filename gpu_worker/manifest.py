"""A model folder's manifest: what the graph is, which output column is which category."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from modq.categories import CANONICAL_CATEGORIES
from modq.errors import ModelUnavailable

MANIFEST_FILE = "manifest.json"
DEFAULT_INPUT_NAMES = ("input_ids", "attention_mask")


@dataclass(frozen=True, slots=True)
class ModelManifest:
    name: str
    version: str
    categories: tuple[str, ...]  # output column i scores categories[i]
    max_length_tokens: int
    onnx_file: str = "model.onnx"
    tokenizer_file: str = "tokenizer.json"
    input_names: tuple[str, ...] = DEFAULT_INPUT_NAMES
    output_name: str = "scores"
    created_at: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = [c for c in self.categories if c not in CANONICAL_CATEGORIES]
        if unknown:
            raise ModelUnavailable(f"model {self.name} maps to unknown categories {unknown}")

    def write(self, folder: Path) -> Path:
        path = folder / MANIFEST_FILE
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def read(cls, folder: Path) -> ModelManifest:
        path = Path(folder) / MANIFEST_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ModelUnavailable(
                f"no model at {folder} (missing {MANIFEST_FILE}); build one with `modq model build`"
            ) from exc
        except json.JSONDecodeError as exc:
            raise ModelUnavailable(f"corrupt manifest {path}: {exc}") from exc
        try:
            data["categories"] = tuple(data["categories"])
            data["input_names"] = tuple(data.get("input_names", DEFAULT_INPUT_NAMES))
            return cls(**data)
        except (TypeError, KeyError) as exc:
            raise ModelUnavailable(f"manifest {path} is incomplete: {exc}") from exc
