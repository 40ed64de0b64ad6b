"""What a build ran on: the numbers an artifact's bits depend on besides the recipe.

The encoder pass sums floats in an order set by the CPU kernels torch picks (AVX2, AVX-512,
oneDNN, MKL), and every weight trained on its embeddings follows: the same recipe on another
CPU, or with other library versions, gives another digest (docs/model.md, "Reproducible
builds"). The manifest keeps this record so that a digest that differs can be explained.
"""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = (
    "torch",
    "transformers",
    "tokenizers",
    "onnx",
    "onnxruntime",
    "scikit-learn",
    "scipy",
    "numpy",
)


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    """The CPU's model name (Linux), else the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def build_environment() -> dict[str, Any]:
    """Python, the packages that compute the weights, the CPU and the kernels torch uses."""
    import torch

    return {
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in PACKAGES},
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
    }
