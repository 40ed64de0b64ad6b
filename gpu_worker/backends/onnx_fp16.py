"""An fp16 copy of an fp32 ONNX model, made once and cached, for the CUDA path.

Inputs and outputs keep their types (``keep_io_types=True``): token ids in, float32 scores
out; only the weights and the arithmetic inside become fp16. The copy is written next to the
model (``model.fp16-<version>.onnx``) or, where that folder is read-only, under the system's
temporary folder; it is written to a temporary name and renamed, so worker processes that
convert at the same time never read half a file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

# Ops of a quantized graph: converting one to fp16 makes no sense (int8 is its own variant).
QUANTIZED_OPS = frozenset(
    {
        "DynamicQuantizeLinear",
        "QuantizeLinear",
        "DequantizeLinear",
        "MatMulInteger",
        "ConvInteger",
        "QLinearMatMul",
        "QLinearConv",
        "QAttention",
        "DynamicQuantizeMatMul",
        "MatMulNBits",
    }
)

# Texts the load-time parity check scores with both precisions: short and long, benign and
# abusive, non-ASCII, and one that runs to the model's length limit.
PROBE_TEXTS: tuple[str, ...] = (
    "thanks, that was really helpful",
    "you are a worthless idiot and everyone hates you",
    "I will find you and hurt you",
    "buy cheap pills now!!! click www.example.com for 90% off",
    "ok",
    "Das ist eine ganz normale Nachricht über das Wetter. ☀️",
    "The committee met on Tuesday to discuss the budget, the new library opening hours and "
    "whether the park should close earlier in winter; no decision was taken.",
    "shut up shut up shut up " * 80,
)


def fp16_path_for(model_path: Path, version: str) -> Path:
    """Where the fp16 copy of ``model_path`` lives (next to it if that folder is writable)."""
    name = f"{model_path.stem}.fp16-{version}.onnx"
    folder = model_path.parent
    if os.access(folder, os.W_OK):
        return folder / name
    digest = hashlib.sha256(str(model_path.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / "modq-fp16" / digest / name


def is_quantized(model_path: Path) -> bool:
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    return any(node.op_type in QUANTIZED_OPS for node in graph.node)


def ensure_fp16_copy(model_path: Path, target: Path) -> Path:
    """``target``, converted from ``model_path`` unless an existing copy is newer than it."""
    if target.exists() and target.stat().st_mtime_ns >= model_path.stat().st_mtime_ns:
        return target
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(model_path)), keep_io_types=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(handle)
    try:
        onnx.save(model, partial)
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return target
