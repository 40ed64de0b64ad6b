"""PyTorch backend: the folder's torch checkpoint on CUDA when present, else CPU.

For models that do not export to ONNX, or to check an export. Same contract as the ONNX
backend: the folder's ``tokenizer.json``, dynamic padding, per-category scores. It serves

* an imported Hugging Face checkpoint (``hf/`` + the manifest's ``label_mapping``), with the
  very module the ONNX graph was exported from;
* the default model (``heads.npz`` on the packaged sentence encoder, or on ``encoder/`` if the
  folder carries its own fine-tuned encoder).

Anything else is ``ModelUnavailable``: there is nothing to run in torch.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gpu_worker.backend import Backend, TokenIds, open_tokenizer, pad_batch
from gpu_worker.labels import LabelMapping
from gpu_worker.manifest import ModelManifest
from gpu_worker.torch_modules import label_scores_module, pooled_heads_module
from modq.errors import ModelUnavailable

if TYPE_CHECKING:
    from tokenizers import Tokenizer

HF_CHECKPOINT_DIR = "hf"  # an imported Hugging Face sequence-classification checkpoint
ENCODER_DIR = "encoder"  # a folder's own (fine-tuned) sentence encoder
HEADS_FILE = "heads.npz"
ENCODER_MODEL_SUBDIR = "model"  # where an encoder package keeps config.json and weights


def choose_torch_device(device: str, cuda_available: bool) -> str:
    """``auto`` takes CUDA when torch sees a GPU; ``cuda`` insists on it."""
    if device == "cpu":
        return "cpu"
    if cuda_available:
        return "cuda"
    if device == "cuda":
        raise ModelUnavailable("device=cuda asked for, but torch sees no CUDA device")
    return "cpu"


class TorchBackend(Backend):
    def __init__(self, folder: Path, *, device: str = "auto", intra_op_threads: int = 1) -> None:
        import torch

        folder = Path(folder)
        super().__init__(ModelManifest.read(folder))
        self._tokenizer, self._pad_id = open_tokenizer(
            folder / self.manifest.tokenizer_file, self.manifest.max_length_tokens
        )
        torch.set_num_threads(intra_op_threads)
        target = choose_torch_device(device, torch.cuda.is_available())
        module = load_torch_module(folder, self.manifest)
        self._module = module.to(target).eval()
        # read back from the weights, not from what was asked for
        self._device = next(self._module.parameters()).device.type

    @property
    def device(self) -> str:
        return self._device

    def tokenize(self, texts: Sequence[str]) -> list[TokenIds]:
        return [e.ids for e in self._tokenizer.encode_batch(list(texts))]

    def text_tokenizer(self) -> Tokenizer:
        return self._tokenizer

    def _run(self, token_ids: Sequence[TokenIds]) -> np.ndarray:
        import torch

        ids, mask = pad_batch(token_ids, self._pad_id)
        with torch.inference_mode():
            scores = self._module(
                torch.from_numpy(ids).to(self._device), torch.from_numpy(mask).to(self._device)
            )
        return np.asarray(scores.float().cpu().numpy(), dtype=np.float32)


def load_torch_module(folder: Path, manifest: ModelManifest) -> Any:
    """The torch module that scores ``folder`` (see the module docstring for what qualifies)."""
    if (folder / HF_CHECKPOINT_DIR).is_dir():
        mapping = LabelMapping.from_dict(manifest.extra.get("label_mapping") or {})
        if mapping.categories != manifest.categories:
            raise ModelUnavailable(
                f"{folder}: label mapping scores {mapping.categories}, "
                f"the manifest declares {manifest.categories}"
            )
        model = load_sequence_classifier(folder / HF_CHECKPOINT_DIR)
        return label_scores_module(model, mapping)
    if (folder / HEADS_FILE).is_file():
        weight, bias, lexical = _read_heads(folder / HEADS_FILE, manifest.categories)
        encoder = load_encoder_model(_encoder_path(folder, manifest))
        return pooled_heads_module(encoder, weight, bias, lexical)
    raise ModelUnavailable(
        f"{folder} has no torch-servable checkpoint (no {HF_CHECKPOINT_DIR}/ folder, no "
        f"{HEADS_FILE}); serve it with MODQ_BACKEND=onnx"
    )


def load_sequence_classifier(path: Path) -> Any:
    """A Hugging Face sequence-classification model, fp32, eval mode; every weight present."""
    from transformers import AutoModelForSequenceClassification

    return _load_checked(AutoModelForSequenceClassification, path)


def load_encoder_model(path: Path) -> Any:
    """A bare Hugging Face encoder (``AutoModel``), fp32, eval mode; every weight present."""
    from transformers import AutoModel

    return _load_checked(AutoModel, path)


def _load_checked(auto_class: Any, path: Path) -> Any:
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        model, info = auto_class.from_pretrained(
            path,
            local_files_only=True,
            output_loading_info=True,
            dtype=torch.float32,
            attn_implementation="eager",  # what the ONNX export traces; sdpa differs by ~1e-8
        )
    except Exception as exc:  # transformers/safetensors raise many untyped errors
        raise ModelUnavailable(f"cannot load the checkpoint in {path}: {exc}") from exc
    missing = sorted(info.get("missing_keys") or [])
    mismatched = list(info.get("mismatched_keys") or [])
    if missing or mismatched:
        # from_pretrained would fill these with random values: refuse rather than serve noise
        raise ModelUnavailable(
            f"checkpoint in {path} does not match its config: missing weights {missing[:5]}, "
            f"mismatched {mismatched[:5]}"
        )
    return model.eval()


def _read_heads(
    path: Path, categories: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """(weight, bias, (idf, lexical_weight) or None) of a heads file."""
    try:
        with np.load(path) as data:
            weight, bias = data["weight"], data["bias"]
            found = tuple(str(c) for c in data["categories"])
            lexical = (
                (data["idf"], data["lexical_weight"]) if "lexical_weight" in data.files else None
            )
    except Exception as exc:  # numpy raises OSError, ValueError, KeyError, zipfile errors
        raise ModelUnavailable(f"cannot read heads {path}: {exc}") from exc
    if found != categories or weight.shape[0] != len(categories) or bias.shape != (len(found),):
        raise ModelUnavailable(f"heads {path} score {found}, the manifest declares {categories}")
    return weight, bias, lexical


def _encoder_path(folder: Path, manifest: ModelManifest) -> Path:
    """The folder's own encoder, else the packaged one (only if the folder used it unchanged)."""
    if (folder / ENCODER_DIR).is_dir():
        return folder / ENCODER_DIR
    pinned = manifest.extra.get("encoder_package")
    if not pinned or manifest.extra.get("fine_tuned"):
        raise ModelUnavailable(
            f"{folder}: the heads need an encoder that is not in the folder (no {ENCODER_DIR}/"
            f"{'; the encoder was fine-tuned' if manifest.extra.get('fine_tuned') else ''}); "
            f"serve it with MODQ_BACKEND=onnx"
        )
    return packaged_encoder_dir(str(pinned))


def packaged_encoder_dir(pinned: str) -> Path:
    """``name==version`` of an installed encoder package → its model folder (same version)."""
    distribution, _, version = pinned.partition("==")
    try:
        installed = importlib.metadata.version(distribution)
        files = importlib.metadata.files(distribution) or []
    except importlib.metadata.PackageNotFoundError as exc:
        raise ModelUnavailable(f"encoder package {distribution!r} is not installed") from exc
    if version and installed != version:
        raise ModelUnavailable(
            f"the model was built on {pinned}, but {distribution} {installed} is installed"
        )
    for file in files:
        parts = Path(str(file)).parts
        if parts[-1] == "config.json" and len(parts) >= 2 and parts[-2] == ENCODER_MODEL_SUBDIR:
            return Path(str(file.locate())).parent
    raise ModelUnavailable(f"encoder package {distribution!r} ships no model config.json")
