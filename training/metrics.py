"""Evaluation metrics per category: ROC-AUC and PR-AUC with 95% bootstrap intervals, and
F1/precision/recall (with 95% Wilson intervals) at the policy thresholds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from training.datasets import HUMAN_SOURCES

THIN_POSITIVES = 50  # fewer positives than this: the figure rests on thin data
BOOTSTRAP_RESAMPLES = 200
BOOTSTRAP_SEED = 0


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> list[float]:
    """95% Wilson score interval of a proportion ([0, 1] without trials)."""
    if trials == 0:
        return [0.0, 1.0]
    p = successes / trials
    centre = p + z * z / (2 * trials)
    spread = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    low, high = (centre - spread) / (1 + z * z / trials), (centre + spread) / (1 + z * z / trials)
    return [round(float(low), 4), round(float(high), 4)]


def bootstrap_interval(
    truth: np.ndarray, score: np.ndarray, metric: Any, *, resamples: int = BOOTSTRAP_RESAMPLES
) -> list[float] | None:
    """95% percentile bootstrap interval of ``metric(truth, score)`` (rows resampled)."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    values = []
    for _ in range(resamples):
        pick = rng.integers(0, len(truth), len(truth))
        if 0 < truth[pick].sum() < len(pick):
            values.append(metric(truth[pick], score[pick]))
    if not values:
        return None
    low, high = np.percentile(values, [2.5, 97.5])
    return [round(float(low), 4), round(float(high), 4)]


def category_metrics(
    scores: np.ndarray,
    labels: np.ndarray,
    sources: Sequence[str],
    categories: Sequence[str],
    thresholds: Mapping[str, tuple[float, float]],
) -> dict[str, dict[str, Any]]:
    """``thresholds[c] = (flag, remove)``; rows with an unknown label (-1) are left out."""
    from sklearn.metrics import (
        average_precision_score,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

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
            entry["roc_auc_ci95"] = bootstrap_interval(truth, score, roc_auc_score)
            entry["pr_auc"] = round(float(average_precision_score(truth, score)), 4)
            entry["pr_auc_ci95"] = bootstrap_interval(truth, score, average_precision_score)
        by_source, by_source_ci = {}, {}
        for source in sorted(set(source_array[known].tolist())):
            mine = source_array[known] == source
            if 0 < truth[mine].sum() < mine.sum():
                by_source[source] = round(float(roc_auc_score(truth[mine], score[mine])), 4)
                by_source_ci[source] = bootstrap_interval(truth[mine], score[mine], roc_auc_score)
        entry["roc_auc_by_source"] = by_source
        entry["roc_auc_by_source_ci95"] = by_source_ci
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
            hits = int((predicted & (truth == 1)).sum())
            entry[f"precision_at_{name}_ci95"] = wilson_interval(hits, int(predicted.sum()))
            entry[f"recall_at_{name}_ci95"] = wilson_interval(hits, positives)
        entry["rows_by_source"] = {
            s: int((source_array[known] == s).sum()) for s in sorted(set(source_array[known]))
        }
        positive_rows = source_array[known][truth == 1]
        human = int(np.isin(positive_rows, sorted(HUMAN_SOURCES)).sum())
        # as calibration decides it (training.finish): few positives, or mostly not human ones
        entry["thin_data"] = positives < THIN_POSITIVES or human * 2 < len(positive_rows)
        report[category] = entry
    return report
