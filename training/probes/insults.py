"""Insults: ROC-AUC of the harassment score on the evaluation rows of the ``insults`` source
(human labels, the cross-domain check), with a bootstrap interval. Target: >= 0.95."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from modq.categories import HARASSMENT
from training.datasets import Example
from training.metrics import bootstrap_interval
from training.probes.base import Lookup, ProbeSet, target

NAME = "insults"
MIN_AUC = 0.95
SAMPLE = 600  # of the ~2,990 rows (seeded): the probes stay about a minute on 2 cores
SEED = 2104


def build(rows: Sequence[Example], seed: int = SEED) -> ProbeSet:
    """The insults set: a seeded sample of the labelled evaluation insults rows."""
    labelled: dict[str, int] = {}
    for r in rows:
        if r.source == "insults" and r.labels.get(HARASSMENT, -1) >= 0:
            labelled.setdefault(r.text, r.labels[HARASSMENT])
    every = len(labelled)
    texts = tuple(random.Random(seed).sample(sorted(labelled), min(SAMPLE, every)))

    def report(lookup: Lookup) -> dict[str, Any]:
        from sklearn.metrics import roc_auc_score

        if not texts:
            return target(None, None, 0, f"ROC-AUC >= {MIN_AUC}", False, {})
        truth = np.array([labelled[t] for t in texts])
        score = np.array([lookup[t].scores.get(HARASSMENT, 0.0) for t in texts])
        hit = np.array([lookup[t].actioned for t in texts])
        auc = float(roc_auc_score(truth, score))
        positives = int(truth.sum())
        details = {
            "positives": positives,
            "sampled_of": every,
            "actioned_precision": round(float(truth[hit].mean()), 4) if hit.any() else None,
            "actioned_recall": round(float(hit[truth == 1].mean()), 4) if positives else None,
        }
        return target(
            auc,
            bootstrap_interval(truth, score, roc_auc_score),
            len(texts),
            f"harassment ROC-AUC >= {MIN_AUC}",
            auc >= MIN_AUC,
            details,
        )

    return ProbeSet(NAME, texts, report)
