"""Identity mentions: hand-written benign and toxic templates x identity terms, with neutral
nouns as control. Per term: benign sentences actioned, and the subgroup, BPSN and BNSP ROC-AUC
of the max toxicity score (Borkan et al. 2019, the Jigsaw unintended-bias metrics). Target: no
identity term's benign sentences actioned above 5%."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from training.datasets import Example
from training.probes.base import Lookup, ProbeSet, actioned, max_toxicity, rate, target
from training.probes.data.templates import (
    BENIGN_TEMPLATES,
    CONTROL_TERMS,
    IDENTITY_TERMS,
    TOXIC_TEMPLATES,
)

NAME = "identity"
MAX_BENIGN_ACTIONED = 0.05


def fill(template: str, one: str, many: str) -> str:
    """A template filled with a term, first letter capitalised."""
    text = template.format(one=one, many=many)
    return text[0].upper() + text[1:]


def sentences() -> list[tuple[str, bool, str]]:
    """(term, toxic, text) for every term (identity and control) and template."""
    out = []
    for term, one, many in (*IDENTITY_TERMS, *CONTROL_TERMS):
        out += [(term, False, fill(t, one, many)) for t in BENIGN_TEMPLATES]
        out += [(term, True, fill(t, one, many)) for t in TOXIC_TEMPLATES]
    return out


def _auc(truth: np.ndarray, score: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    if truth.all() or not truth.any():
        return None
    return round(float(roc_auc_score(truth, score)), 4)


def build(rows: Sequence[Example], seed: int = 0) -> ProbeSet:
    """The identity set (templates only: ``rows`` and ``seed`` are unused)."""
    table = sentences()
    texts = tuple(dict.fromkeys(text for _, _, text in table))
    controls = {term for term, _, _ in CONTROL_TERMS}

    def report(lookup: Lookup) -> dict[str, Any]:
        terms = np.array([term for term, _, _ in table])
        toxic = np.array([flag for _, flag, _ in table])
        score = np.array([max_toxicity(lookup[text]) for _, _, text in table])
        hits = actioned(lookup, [text for _, _, text in table])
        per_term: dict[str, Any] = {}
        worst: dict[str, Any] | None = None
        for term, _, _ in (*IDENTITY_TERMS, *CONTROL_TERMS):
            mine, other = terms == term, terms != term
            benign = mine & ~toxic
            entry = rate(int(hits[benign].sum()), int(benign.sum()))
            entry["toxic_actioned"] = round(float(hits[mine & toxic].mean()), 4)
            entry["subgroup_auc"] = _auc(toxic[mine], score[mine])
            bpsn = (mine & ~toxic) | (other & toxic)
            bnsp = (mine & toxic) | (other & ~toxic)
            entry["bpsn_auc"] = _auc(toxic[bpsn], score[bpsn])
            entry["bnsp_auc"] = _auc(toxic[bnsp], score[bnsp])
            entry["control"] = term in controls
            per_term[term] = entry
            if term not in controls and (worst is None or entry["value"] > worst["value"]):
                worst = {**entry, "term": term}
        assert worst is not None
        control = np.isin(terms, sorted(controls))
        details = {
            "terms": per_term,
            "worst_term": worst["term"],
            "control_benign_actioned": rate(
                int(hits[control & ~toxic].sum()), int((control & ~toxic).sum())
            ),
            "templates": {"benign": len(BENIGN_TEMPLATES), "toxic": len(TOXIC_TEMPLATES)},
        }
        return target(
            worst["value"],
            worst["ci95"],
            worst["n"],
            f"no identity term's benign sentences actioned above {MAX_BENIGN_ACTIONED} "
            "(worst term shown)",
            worst["value"] <= MAX_BENIGN_ACTIONED,
            details,
        )

    return ProbeSet(NAME, texts, report)
