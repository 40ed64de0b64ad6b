"""Held-out metrics per category: ROC-AUC and F1/precision/recall at the policy thresholds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

THIN_POSITIVES = 100  # fewer held-out positives than this: the figure rests on thin data


def category_metrics(
    scores: np.ndarray,
    labels: np.ndarray,
    sources: Sequence[str],
    categories: Sequence[str],
    thresholds: Mapping[str, tuple[float, float]],
) -> dict[str, dict[str, Any]]:
    """``thresholds[c] = (flag, remove)``; rows with an unknown label (-1) are left out."""
    from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

    report: dict[str, dict[str, Any]] = {}
    source_array = np.asarray(sources)
    for column, category in enumerate(categories):
        known = labels[:, column] >= 0
        truth, score = labels[known, column], scores[known, column]
        positives = int(truth.sum())
        entry: dict[str, Any] = {
            "held_out_rows": int(known.sum()),
            "held_out_positives": positives,
            "positive_sources": sorted(set(source_array[known][truth == 1].tolist())),
        }
        if 0 < positives < len(truth):
            entry["roc_auc"] = round(float(roc_auc_score(truth, score)), 4)
        by_source = {}
        for source in sorted(set(source_array[known].tolist())):
            mine = source_array[known] == source
            if 0 < truth[mine].sum() < mine.sum():
                by_source[source] = round(float(roc_auc_score(truth[mine], score[mine])), 4)
        entry["roc_auc_by_source"] = by_source
        for name, cut in zip(("flag", "remove"), thresholds.get(category, (0.5, 0.5)), strict=True):
            predicted = score >= cut
            entry[f"{name}_threshold"] = cut
            entry[f"f1_at_{name}"] = round(float(f1_score(truth, predicted, zero_division=0)), 4)
            entry[f"precision_at_{name}"] = round(
                float(precision_score(truth, predicted, zero_division=0)), 4
            )
            entry[f"recall_at_{name}"] = round(
                float(recall_score(truth, predicted, zero_division=0)), 4
            )
        entry["thin_data"] = positives < THIN_POSITIVES or entry["positive_sources"] != ["insults"]
        report[category] = entry
    return report
