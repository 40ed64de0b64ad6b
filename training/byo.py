"""Bring your own model: an outside classifier becomes a normal modq model folder.

A Hugging Face sequence-classification checkpoint is wrapped (model → activation → max per
canonical category), exported to ONNX and checked against torch; the checkpoint is kept under
``hf/`` for the PyTorch backend. An ONNX file gets the same mapping as added graph nodes
(``training.byo_onnx``). Either way the folder holds manifest.json, model.onnx, tokenizer.json
and MODEL_CARD.md, and the ONNX backend serves it unchanged.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import warnings
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from gpu_worker.backend import Backend, open_tokenizer, pad_batch
from gpu_worker.backends.torch import HF_CHECKPOINT_DIR, load_sequence_classifier
from gpu_worker.labels import LabelMapping, build_label_mapping
from gpu_worker.manifest import ModelManifest
from gpu_worker.torch_modules import label_scores_module
from modq.errors import ModelUnavailable
from training.artifacts import onnx_version, publish_folder, staging_folder

OPSET = 17
PARITY_TOLERANCE = 1e-4
DEFAULT_MAX_LENGTH_TOKENS = 512
ROBERTA_LIKE = {"roberta", "xlm-roberta", "camembert", "longformer", "bertweet"}  # offset 2
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
# varied lengths in one padded batch: masks and truncation are exercised, not just one row
PARITY_TEXTS = (
    "ok",
    "You are a worthless idiot and everyone knows it.",
    "Thanks, the lemon cake recipe turned out great!",
    "CONGRATULATIONS you won a $1000 gift card!!! claim now at bit.ly/prize-now",
    "I will find you and break your legs",
    "What time does the library open on Sundays?",
    "go away",
    "Buy cheap followers now, 10k for $5, DM me " * 3,
    "This is a long, rambling comment about nothing in particular. " * 60,
    "¿Dónde está la estación? 駅はどこですか",
)


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise ModelUnavailable(
            f"bad model name {name!r}: use letters, digits, '.', '_' or '-' (at most 100)"
        )
    return name


def import_hf_checkpoint(
    path: Path,
    *,
    name: str,
    label_map: Mapping[str, str],
    ignore: Iterable[str] = (),
    activation: str | None = None,
    max_length: int | None = None,
    torch_only: bool = False,
    models_root: Path,
) -> Path:
    """Import a Hugging Face sequence-classification checkpoint folder; return the new folder.

    ``activation`` defaults to sigmoid for multi-label (``problem_type``) or one-label models,
    softmax otherwise. Raises ``LabelMappingError`` for a label with no mapping or an unknown
    category, ``ModelUnavailable`` for a checkpoint that cannot load or export faithfully.
    ``torch_only`` skips the ONNX export (for models that do not export): the folder then
    serves with the PyTorch backend only, and its version hashes the checkpoint files.
    """
    check_name(name)
    source = Path(path)
    config = _read_config(source)
    labels = _labels(config, source)
    mapping = build_label_mapping(labels, label_map, ignore, activation or _activation(config))
    limit = _position_limit(config)
    max_length = max_length or min(DEFAULT_MAX_LENGTH_TOKENS, limit, _tokenizer_limit(source))
    if not 1 < max_length <= limit:
        raise ModelUnavailable(f"max length {max_length} is outside 2..{limit} for this model")
    model = load_sequence_classifier(source)
    module = label_scores_module(model, mapping)

    def reference(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return _torch_scores(module, ids, mask)

    staging = staging_folder(models_root)
    try:
        _write_tokenizer(source, staging / "tokenizer.json")
        model.save_pretrained(staging / HF_CHECKPOINT_DIR)
        onnx_path = staging / "model.onnx"
        if torch_only:
            version = checkpoint_version(staging / HF_CHECKPOINT_DIR)
        else:
            _export(module, staging / "tokenizer.json", max_length, onnx_path)
            version = onnx_version(onnx_path)
        manifest = import_manifest(name, version, mapping, max_length, source, "hf-checkpoint")
        manifest = with_extra(manifest, torch_only=torch_only)
        manifest.write(staging)
        if not torch_only:
            onnx_diff = parity_max_abs_diff(_onnx_backend(staging), staging, reference)
            check_parity(onnx_diff, "the ONNX graph", "torch")
            manifest = with_extra(manifest, onnx_parity_max_abs_diff=onnx_diff)
        # what the PyTorch backend will load (hf/, reloaded) scores as the checked module does
        torch_diff = parity_max_abs_diff(_torch_backend(staging), staging, reference)
        check_parity(torch_diff, "the saved checkpoint", "in-memory torch")
        manifest = with_extra(
            manifest, parity_against="torch", torch_reload_max_abs_diff=torch_diff
        )
        manifest.write(staging)
        write_import_card(staging / "MODEL_CARD.md", manifest, mapping)
        return publish_folder(staging, models_root, name, manifest.version)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def checkpoint_version(folder: Path) -> str:
    """A torch-only model's version: sha256[:12] over its checkpoint files (name and bytes)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def _onnx_backend(folder: Path) -> Backend:
    from gpu_worker.backends.onnx import OnnxBackend

    return OnnxBackend(folder, device="cpu")


def _torch_backend(folder: Path) -> Backend:
    import torch

    from gpu_worker.backends.torch import TorchBackend

    # keep this process's thread count (the backend sets it)
    return TorchBackend(folder, device="cpu", intra_op_threads=torch.get_num_threads())


def parity_max_abs_diff(backend: Backend, folder: Path, reference: Any) -> float:
    """Largest |reference - backend| over ``PARITY_TEXTS``, as served (one padded batch)."""
    token_ids = backend.tokenize(PARITY_TEXTS)
    tokenizer = folder / backend.manifest.tokenizer_file
    ids, mask = pad_batch(token_ids, _pad_id(tokenizer, backend.manifest.max_length_tokens))
    served = backend.run(token_ids)
    expected = np.asarray(reference(ids, mask), dtype=np.float32)
    if expected.shape != served.shape:
        raise ModelUnavailable(f"source scores {expected.shape}, served {served.shape}")
    return float(np.abs(expected - served).max())


def check_parity(diff: float, what: str, against: str) -> None:
    if not diff <= PARITY_TOLERANCE:  # also catches NaN
        raise ModelUnavailable(
            f"{what} differs from the {against} source by {diff:.2e} "
            f"(> {PARITY_TOLERANCE}); nothing was imported"
        )


def write_import_card(path: Path, manifest: ModelManifest, mapping: LabelMapping) -> None:
    extra = manifest.extra
    lines = [
        f"# {manifest.name} {manifest.version}",
        "",
        f"Imported from `{extra.get('source_path')}` ({extra.get('source')}), "
        f"activation {mapping.activation}, max length {manifest.max_length_tokens} tokens.",
        _parity_line(extra),
        "",
        "| model label | category |",
        "| --- | --- |",
    ]
    for label in mapping.labels:
        lines.append(f"| {label} | {mapping.label_to_category.get(label, '(ignored)')} |")
    lines += [
        "",
        f"Categories scored: {', '.join(manifest.categories)} (a category fed by several labels "
        "scores their maximum). Categories not listed are not scored by this model.",
        "No held-out metrics: measure them with `modq model eval` before promoting.",
        "",
    ]
    path.write_text("\n".join(lines))


def _parity_line(extra: Mapping[str, Any]) -> str:
    if extra.get("torch_only"):
        return (
            "PyTorch only (no ONNX graph): serve with MODQ_BACKEND=torch. Reloaded checkpoint "
            f"vs source: max abs diff {extra.get('torch_reload_max_abs_diff', float('nan')):.1e}."
        )
    return (
        f"ONNX parity with the {extra.get('parity_against')} source: max abs diff "
        f"{extra.get('onnx_parity_max_abs_diff', float('nan')):.1e} on {len(PARITY_TEXTS)} texts."
    )


def import_manifest(
    name: str,
    version: str,
    mapping: LabelMapping,
    max_length: int,
    source: Path,
    kind: str,
) -> ModelManifest:
    return ModelManifest(
        name=name,
        version=version,
        categories=mapping.categories,
        max_length_tokens=max_length,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        extra={
            "source": kind,
            "source_path": str(source.resolve()),
            "label_mapping": mapping.to_dict(),
        },
    )


def with_extra(manifest: ModelManifest, **extra: Any) -> ModelManifest:
    from dataclasses import replace

    return replace(manifest, extra={**manifest.extra, **extra})


def _read_config(source: Path) -> dict[str, Any]:
    path = source / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelUnavailable(
            f"{source} is not a Hugging Face checkpoint folder (no config.json)"
        ) from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelUnavailable(f"corrupt {path}: {exc}") from exc
    if not isinstance(config, dict):
        raise ModelUnavailable(f"corrupt {path}: not a JSON object")
    return config


def _labels(config: Mapping[str, Any], source: Path) -> list[str]:
    id2label = config.get("id2label")
    if not isinstance(id2label, dict) or not id2label:
        raise ModelUnavailable(f"{source}/config.json has no id2label: not a classifier")
    try:
        by_id = {int(k): str(v) for k, v in id2label.items()}
    except ValueError as exc:
        raise ModelUnavailable(f"{source}/config.json: id2label keys are not ints") from exc
    if sorted(by_id) != list(range(len(by_id))):
        raise ModelUnavailable(f"{source}/config.json: id2label ids are not 0..{len(by_id) - 1}")
    return [by_id[i] for i in range(len(by_id))]


def _activation(config: Mapping[str, Any]) -> str:
    if config.get("problem_type") == "multi_label_classification":
        return "sigmoid"
    return "sigmoid" if len(config.get("id2label") or {}) == 1 else "softmax"


def _position_limit(config: Mapping[str, Any]) -> int:
    positions = int(config.get("max_position_embeddings") or DEFAULT_MAX_LENGTH_TOKENS)
    return positions - 2 if config.get("model_type") in ROBERTA_LIKE else positions


def _tokenizer_limit(source: Path) -> int:
    try:
        tokenizer_config = json.loads((source / "tokenizer_config.json").read_text())
        limit = int(tokenizer_config.get("model_max_length") or DEFAULT_MAX_LENGTH_TOKENS)
    except (OSError, ValueError, TypeError, AttributeError):
        return DEFAULT_MAX_LENGTH_TOKENS
    return limit if limit > 1 else DEFAULT_MAX_LENGTH_TOKENS


def _write_tokenizer(source: Path, target: Path) -> None:
    """``tokenizer.json`` of the checkpoint; else the fast tokenizer transformers builds."""
    if (source / "tokenizer.json").is_file():
        shutil.copy(source / "tokenizer.json", target)
    else:
        from transformers import AutoTokenizer

        try:
            fast = AutoTokenizer.from_pretrained(source, local_files_only=True, use_fast=True)
            fast.backend_tokenizer.save(str(target))
        except Exception as exc:  # transformers raises many untyped errors
            raise ModelUnavailable(
                f"{source} has no tokenizer.json and no fast tokenizer could be built: {exc}"
            ) from exc
    open_tokenizer(target, DEFAULT_MAX_LENGTH_TOKENS)  # fails clearly on a corrupt file


def _pad_id(tokenizer_path: Path, max_length: int) -> int:
    return open_tokenizer(tokenizer_path, max_length)[1]


def sample_batch(tokenizer_path: Path, max_length: int, texts: Sequence[str]) -> tuple[Any, Any]:
    """Token ids and mask for ``texts``, tokenized and padded exactly as the backends do."""
    tokenizer, pad_id = open_tokenizer(tokenizer_path, max_length)
    return pad_batch([e.ids for e in tokenizer.encode_batch(list(texts))], pad_id)


def _torch_scores(module: Any, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    import torch

    try:
        with torch.inference_mode():
            return np.asarray(module(torch.from_numpy(ids), torch.from_numpy(mask)).numpy())
    except Exception as exc:  # a model that cannot run on its own tokenizer's ids
        raise ModelUnavailable(f"the checkpoint fails on sample texts: {exc}") from exc


def _export(module: Any, tokenizer_path: Path, max_length: int, onnx_path: Path) -> None:
    """Legacy (TorchScript) exporter, opset 17, dynamic batch and sequence axes."""
    import torch

    ids, mask = sample_batch(tokenizer_path, max_length, PARITY_TEXTS[:2])
    axes = {
        "input_ids": {0: "batch", 1: "sequence"},
        "attention_mask": {0: "batch", 1: "sequence"},
        "scores": {0: "batch"},
    }
    try:
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")  # tracer chatter; the parity check is the judge
            torch.onnx.export(
                module,
                (torch.from_numpy(ids), torch.from_numpy(mask)),
                str(onnx_path),
                input_names=["input_ids", "attention_mask"],
                output_names=["scores"],
                dynamic_axes=axes,
                opset_version=OPSET,
                dynamo=False,
            )
    except Exception as exc:  # the exporter raises many untyped errors
        raise ModelUnavailable(
            f"ONNX export failed: {exc}; import with --torch-only to serve the checkpoint with "
            "the PyTorch backend"
        ) from exc


def import_onnx_file(path: Path, **options: Any) -> Path:
    """Import an ONNX classifier file: see ``training.byo_onnx.import_onnx_file``."""
    from training.byo_onnx import import_onnx_file as import_graph

    return import_graph(path, **options)
