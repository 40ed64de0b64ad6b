"""Which model folders the bench compares: the served one, its fp32 source, its int8 variant.

``modq model quantize`` writes an int8 folder whose manifest says ``extra.precision ==
"int8"`` and names its source (``quantized_from_name``/``quantized_from``); it may become
``models/current``. The seed design always runs the fp32 encoder + heads (``heads.npz``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _extra(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    extra = data.get("extra", {})
    return extra if isinstance(extra, dict) else {}


def precision(folder: Path) -> str:
    """``int8`` or ``fp32`` (a manifest without the field is an fp32 build)."""
    return str(_extra(folder).get("precision", "fp32"))


def models_root(folder: Path) -> Path:
    """The ``models/`` folder holding ``folder`` (``models/<name>/<version>`` or current)."""
    root = folder.resolve()
    while root.name != "models" and root != root.parent:
        root = root.parent
    return root if root.name == "models" else folder.resolve().parent.parent


def fp32_source(folder: Path) -> Path | None:
    """``folder`` if it is fp32, else the fp32 folder it was quantized from (if on disk)."""
    extra = _extra(folder)
    if extra.get("precision", "fp32") != "int8":
        return folder
    name, version = extra.get("quantized_from_name"), extra.get("quantized_from")
    source = models_root(folder) / str(name) / str(version)
    return source if name and version and (source / "manifest.json").exists() else None


def int8_variant(fp32: Path) -> Path | None:
    """An int8 folder quantized from ``fp32`` (else any int8 folder under the models root)."""
    version = json.loads((fp32 / "manifest.json").read_text()).get("version")
    candidates = []
    for manifest in sorted(models_root(fp32).rglob("manifest.json")):
        extra = _extra(manifest.parent)
        if extra.get("precision") == "int8":
            candidates.append((extra.get("quantized_from") != version, manifest.parent))
    return min(candidates)[1] if candidates else None
