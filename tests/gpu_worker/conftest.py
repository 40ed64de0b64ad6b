"""The gpu_worker room's fixtures."""

import json
from pathlib import Path

import pytest


def fp32_folder(model_dir: Path) -> Path:
    """The fp32 model behind ``model_dir``: on a CPU the default serves its int8 copy, which
    has no torch weights, is never converted to fp16, and whose scores move a little with
    their batch-mates (dynamic activation scales)."""
    extra = json.loads((model_dir / "manifest.json").read_text())["extra"]
    if extra.get("precision") != "int8":
        return model_dir
    return model_dir.parent.parent / extra["quantized_from_name"] / extra["quantized_from"]


@pytest.fixture(scope="session")
def fp32_model_dir(model_dir: Path) -> Path:
    return fp32_folder(model_dir)
