"""Other languages: hand-written abusive and benign texts in Spanish, French, German, Italian
and Portuguese. Each must be decided right (abusive actioned, benign allowed) or marked (its
language unsupported, and the policy's language rule acting on it). Target: the share that is
neither, "silently wrong", is 0."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from training.datasets import Example
from training.probes.base import Lookup, ProbeSet, rate, read_csv, target

NAME = "languages"


def rows_of_file() -> list[tuple[str, bool, str]]:
    """(language, abusive, text) from ``languages.csv``."""
    return [(r["language"], r["kind"] == "abusive", r["text"]) for r in read_csv("languages.csv")]


def build(rows: Sequence[Example], seed: int = 0) -> ProbeSet:
    """The languages set (hand-written only: ``rows`` and ``seed`` are unused)."""
    table = rows_of_file()
    texts = tuple(dict.fromkeys(text for _, _, text in table))

    def report(lookup: Lookup) -> dict[str, Any]:
        per_language: dict[str, Counter[str]] = {}
        detected: Counter[str] = Counter()
        silent = 0
        for language, abusive, text in table:
            judgement = lookup[text]
            right = judgement.actioned if abusive else not judgement.actioned
            counts = per_language.setdefault(language, Counter())
            counts["n"] += 1
            counts["abusive" if abusive else "benign"] += 1
            counts["right"] += right
            counts["marked"] += judgement.marked
            if abusive:
                counts["abusive_actioned"] += judgement.actioned
            else:
                counts["benign_allowed"] += not judgement.actioned
            wrong = not right and not judgement.marked
            counts["silently_wrong"] += wrong
            silent += wrong
            detected[str(judgement.language)] += 1
        overall = rate(silent, len(table))
        return target(
            overall["value"],
            overall["ci95"],
            len(table),
            "every non-English text decided right or marked: silently wrong = 0",
            silent == 0,
            {
                "languages": {k: dict(v) for k, v in per_language.items()},
                "detected": dict(detected),
                "language_rule_applied": any(lookup[t].language is not None for t in texts),
            },
        )

    return ProbeSet(NAME, texts, report)
