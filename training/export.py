"""Encoder + mean pooling + heads + sigmoid as one ONNX graph, checked against torch."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modq.errors import ModelUnavailable
from training.heads import Heads

OPSET = 17
INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAME = "scores"
PARITY_TOLERANCE = 1e-4


def classifier_module(encoder: Any, heads: Heads) -> Any:
    """A torch module: (input_ids, attention_mask) -> sigmoid scores (batch, categories); the
    same module the PyTorch backend serves (``gpu_worker.torch_modules``)."""
    from gpu_worker.torch_modules import pooled_heads_module

    return pooled_heads_module(encoder, heads.weight, heads.bias, heads.lexical)


def padded_batch(tokenizer: Any, texts: Sequence[str]) -> dict[str, Any]:
    """``input_ids`` and ``attention_mask`` torch tensors for ``texts`` from a ``tokenizers``
    Tokenizer (truncating as configured), padded with 0 to the longest."""
    import torch

    ids = [e.ids for e in tokenizer.encode_batch(list(texts))]
    width = max(len(i) for i in ids)
    input_ids = torch.zeros((len(ids), width), dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for row, seq in enumerate(ids):
        input_ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return {"input_ids": input_ids, "attention_mask": mask}


def export_onnx(module: Any, tokenizer: Any, path: Path) -> None:
    """Legacy (TorchScript) exporter, opset 17, dynamic batch and sequence axes."""
    import torch

    sample = padded_batch(tokenizer, ["a short sample", "a somewhat longer sample text"])
    axes = {
        "input_ids": {0: "batch", 1: "sequence"},
        "attention_mask": {0: "batch", 1: "sequence"},
        OUTPUT_NAME: {0: "batch"},
    }
    # the tracer warns about the attention-mask code and aten::index; parity is checked after
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Exporting aten::index", category=UserWarning)
        torch.onnx.export(
            module,
            (sample["input_ids"], sample["attention_mask"]),
            str(path),
            input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )


def parity_max_abs_diff(
    module: Any, tokenizer: Any, onnx_path: Path, texts: Sequence[str], *, max_length: int
) -> float:
    """Largest |torch - onnxruntime| over the texts' scores (batched, padded)."""
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for start in range(0, len(texts), 16):
        batch = padded_batch(tokenizer, texts[start : start + 16])
        with torch.inference_mode():
            expected = module(batch["input_ids"], batch["attention_mask"]).numpy()
        feeds = {name: batch[name].numpy().astype(np.int64) for name in INPUT_NAMES}
        got = session.run([OUTPUT_NAME], feeds)[0]
        worst = max(worst, float(np.abs(expected - got).max()))
    return worst


def check_parity(diff: float) -> None:
    if diff > PARITY_TOLERANCE:
        raise ModelUnavailable(
            f"exported ONNX graph differs from torch by {diff:.2e} (> {PARITY_TOLERANCE})"
        )


def write_classifier_files(
    staging: Path,
    encoder: Any,
    tokenizer: Any,
    heads: Heads,
    parity_texts: Sequence[str],
    *,
    max_length: int,
) -> float:
    """Export encoder + heads to ``staging/model.onnx``, check parity with torch on
    ``parity_texts``, and write the tokenizer (a ``tokenizers`` Tokenizer, with its
    normaliser) and ``heads.npz`` beside it; the parity diff."""
    from training.heads import save_heads

    module = classifier_module(encoder, heads)
    onnx_path = staging / "model.onnx"
    export_onnx(module, tokenizer, onnx_path)
    diff = parity_max_abs_diff(module, tokenizer, onnx_path, parity_texts, max_length=max_length)
    check_parity(diff)
    tokenizer.save(str(staging / "tokenizer.json"))
    save_heads(staging / "heads.npz", heads)
    return diff
