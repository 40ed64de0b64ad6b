"""A second, genuinely different model for registry and hot-swap tests: the real model with
its heads' bias shifted, so every score differs and a result shows which version made it."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

HEAD_BIAS = "head.bias"


def make_variant(source: Path, target: Path, *, bias_shift: float) -> Path:
    """Copy ``source`` to ``target`` with ``bias_shift`` added to every head's logit bias."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    target.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        if path.name != "model.onnx":
            shutil.copy(path, target / path.name)
    graph = onnx.load(str(source / "model.onnx"))
    for index, tensor in enumerate(graph.graph.initializer):
        if tensor.name == HEAD_BIAS:
            shifted = numpy_helper.to_array(tensor).astype(np.float32) + np.float32(bias_shift)
            graph.graph.initializer[index].CopyFrom(numpy_helper.from_array(shifted, HEAD_BIAS))
            break
    else:
        raise AssertionError(f"{HEAD_BIAS} not found in {source / 'model.onnx'}")
    onnx.save(graph, str(target / "model.onnx"))
    manifest = json.loads((source / "manifest.json").read_text())
    manifest["version"] = hashlib.sha256((target / "model.onnx").read_bytes()).hexdigest()[:12]
    manifest["name"] = f"{manifest['name']}-shifted"
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return target


def fp32_source(model_dir: Path) -> Path:
    """The fp32 folder behind ``model_dir``: the CPU default serves an int8 copy, whose scores
    move a little with their batch-mates (dynamic activation scales), so tests that compare
    scores across batches exactly use fp32."""
    extra = json.loads((model_dir / "manifest.json").read_text())["extra"]
    if extra.get("precision") != "int8":
        return model_dir
    return model_dir.parent.parent / extra["quantized_from_name"] / extra["quantized_from"]
