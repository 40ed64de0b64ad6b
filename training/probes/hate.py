"""Hate without profanity: dehumanising and excluding sentences about groups (hand-written
templates x groups). Reports the share actioned (recall); no numeric goal yet."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from training.datasets import Example
from training.probes.base import Lookup, ProbeSet, actioned, rate, target
from training.probes.data.templates import HATE_GROUPS, HATE_TEMPLATES, IDENTITY_TERMS
from training.probes.identity import fill

NAME = "hate"


def sentences() -> list[tuple[str, str]]:
    """(template, text) for every hate template and group."""
    plural = {term: many for term, _, many in IDENTITY_TERMS}
    return [(t, fill(t, "", plural[g])) for t in HATE_TEMPLATES for g in HATE_GROUPS]


def build(rows: Sequence[Example], seed: int = 0) -> ProbeSet:
    """The hate set (templates only: ``rows`` and ``seed`` are unused)."""
    table = sentences()
    texts = tuple(dict.fromkeys(text for _, text in table))

    def report(lookup: Lookup) -> dict[str, Any]:
        hits = actioned(lookup, list(texts))
        per_template = {}
        for template in HATE_TEMPLATES:
            mine = [text for t, text in table if t == template]
            per_template[template] = rate(int(actioned(lookup, mine).sum()), len(mine))
        overall = rate(int(hits.sum()), len(texts))
        return target(
            overall["value"],
            overall["ci95"],
            len(texts),
            "report only (recall of actioned; no numeric goal)",
            None,
            {"templates": per_template, "groups": list(HATE_GROUPS)},
        )

    return ProbeSet(NAME, texts, report)
