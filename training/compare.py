"""Put built models side by side (and beside the offline baselines) in their cards."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gpu_worker.manifest import ModelManifest
from policy import Policy
from training.card import Metrics, write_model_card

BASELINES_KEY = "baselines"
BASELINE_TITLES = {"tfidf_lr": "TF-IDF + LR", "profanity_check": "alt-profanity-check"}


def read_metrics(folder: Path) -> tuple[Metrics, dict[str, Any]]:
    """(per-category metrics, baselines) from a folder's metrics.json."""
    document = json.loads((Path(folder) / "metrics.json").read_text(encoding="utf-8"))
    baselines = document.pop(BASELINES_KEY, {})
    return document, baselines


def _title(manifest: ModelManifest) -> str:
    return f"{manifest.name} {manifest.version}"


def compare_models(
    folders: Sequence[Path], policy: Policy, *, with_baselines: bool
) -> dict[str, Any]:
    """Rewrite each folder's card with a table of the other folders' held-out figures and,
    with ``with_baselines``, the baselines' (also stored in metrics.json under "baselines").
    All figures are on the same held-out rows. Returns the baselines report ({} without)."""
    baselines: dict[str, Any] = {}
    if with_baselines:
        from training.baselines import run_baselines

        baselines = run_baselines(policy)
    loaded = [(Path(f), ModelManifest.read(f), read_metrics(f)[0]) for f in folders]
    for folder, manifest, metrics in loaded:
        comparison: dict[str, Metrics] = {
            _title(other): other_metrics
            for other_folder, other, other_metrics in loaded
            if other_folder != folder
        }
        for key, report in baselines.items():
            comparison[BASELINE_TITLES.get(key, key)] = report["metrics"]
        if baselines:
            document = {**metrics, BASELINES_KEY: baselines}
            (folder / "metrics.json").write_text(json.dumps(document, indent=2) + "\n")
        write_model_card(folder / "MODEL_CARD.md", manifest, metrics, comparison)
    return baselines
