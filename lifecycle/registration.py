"""Put a built model folder into the registry, once, after checking that it serves."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from gpu_worker.manifest import ModelManifest
from modq.errors import ModelUnavailable
from modq.settings import get_settings
from registry import ModelRegistry, RegisteredVersion, registry_from_settings

log = logging.getLogger(__name__)
CARD_FILE = "MODEL_CARD.md"
METRICS_FILE = "metrics.json"
CALIBRATION_FILE = "calibration.json"
SMOKE_TEXTS = ("a perfectly ordinary sentence", "you are an idiot")


def register_model_folder(
    folder: Path,
    *,
    name: str | None = None,
    registry: ModelRegistry | None = None,
    check_loads: bool = True,
) -> RegisteredVersion:
    """Register ``folder`` as a version of ``name`` (default ``MODQ_REGISTRY_MODEL_NAME``).

    The same files (same digest) registered again return the existing version. The folder must
    load and score in ONNX Runtime first, so a corrupt artifact never becomes a version.
    """
    settings = get_settings()
    name = name or settings.registry_model_name
    registry = registry or registry_from_settings(settings)
    folder = Path(folder).resolve()
    manifest = ModelManifest.read(folder)
    if check_loads:
        _check_serves(folder, manifest)
    try:
        existing = registry.versions(name)
    except ModelUnavailable:
        existing = []
    for entry in existing:
        if entry.digest == manifest.version:
            log.info("%s is already %s v%s", folder, name, entry.version)
            return entry
    metrics = _read_metrics(folder)
    card = folder / CARD_FILE
    entry = registry.register(
        folder,
        name,
        tags={**_tags(manifest), **_operating_point_tags(folder)},
        metrics=_flat_metrics(metrics),
        description=card.read_text(encoding="utf-8")[:4000] if card.exists() else "",
    )
    log.info("registered %s as %s v%s", folder, name, entry.version)
    return entry


def _check_serves(folder: Path, manifest: ModelManifest) -> None:
    from gpu_worker.backends.onnx import OnnxBackend

    scores = OnnxBackend(folder, device="cpu").score(list(SMOKE_TEXTS))
    if scores.shape != (len(SMOKE_TEXTS), len(manifest.categories)):
        raise ModelUnavailable(f"{folder} scores with shape {scores.shape}")  # pragma: no cover


def _read_metrics(folder: Path) -> dict[str, Any]:
    path = folder / METRICS_FILE
    if not path.exists():
        return {}
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelUnavailable(f"corrupt {path}: {exc}") from exc
    return loaded if isinstance(loaded, dict) else {}


def _flat_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """``{category: {roc_auc: x, f1_at_flag: y}}`` → ``{roc_auc.category: x, ...}``: with
    the thresholds calibrated for this version and precision/recall at each on evaluation,
    every registered version carries its operating points."""
    flat: dict[str, float] = {}
    for category, entry in metrics.items():
        if not isinstance(entry, dict):
            continue
        for key in (
            "roc_auc",
            "pr_auc",
            "f1_at_flag",
            "f1_at_remove",
            "flag_threshold",
            "precision_at_flag",
            "recall_at_flag",
            "remove_threshold",
            "precision_at_remove",
            "recall_at_remove",
        ):
            value = entry.get(key)
            if isinstance(value, int | float):
                flat[f"{key}.{category}"] = float(value)
    return flat


def _operating_point_tags(folder: Path) -> dict[str, str]:
    """``modq.thresholds``: the flag/remove cuts calibrated on validation for this version."""
    path = folder / CALIBRATION_FILE
    if not path.exists():
        return {}
    try:
        categories = json.loads(path.read_text(encoding="utf-8")).get("categories", {})
    except json.JSONDecodeError as exc:
        raise ModelUnavailable(f"corrupt {path}: {exc}") from exc
    cuts = {c: [k["flag"]["threshold"], k["remove"]["threshold"]] for c, k in categories.items()}
    return {"modq.thresholds": json.dumps(cuts, sort_keys=True)}


def _tags(manifest: ModelManifest) -> dict[str, str]:
    extra = manifest.extra
    tags = {
        "modq.digest": manifest.version,
        "modq.family": manifest.name,
        "modq.categories": ",".join(manifest.categories),
        "modq.precision": str(extra.get("precision", "fp32")),
        "modq.created_at": manifest.created_at,
    }
    for key in ("encoder_package", "quantized_from", "cpu_default", "onnx_parity_max_abs_diff"):
        if key in extra:
            tags[f"modq.{key}"] = str(extra[key])
    if "data_rows_by_source" in extra:
        tags["modq.data_rows_by_source"] = json.dumps(extra["data_rows_by_source"], sort_keys=True)
    return tags
