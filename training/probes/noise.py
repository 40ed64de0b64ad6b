"""Appended noise: hand-written short threats and insults alone vs with a junk suffix (a random
marker token, "lol", emoji, a URL, a hashtag). Actioned: flagged or removed for a toxicity
category (a spam flag on the junk is not catching the abuse). Target: per suffix kind,
actioned rate at least the rate alone minus 0.05."""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from training.datasets import Example
from training.probes.base import (
    Lookup,
    ProbeSet,
    paired_bootstrap,
    rate,
    short_abuse,
    target,
    toxic_actioned,
)

NAME = "noise"
SEED = 2103
MAX_DROP = 0.05


def _marker(rng: random.Random) -> str:
    tail = "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(3))
    return "MARKER" + tail


SUFFIXES: dict[str, Callable[[random.Random], str]] = {
    "marker_token": _marker,
    "lol": lambda rng: rng.choice(("lol", "LOL", "lmao", "haha")),
    "emoji": lambda rng: rng.choice(("😂", "🤣😂", "🙄", "💯🔥")),
    "url": lambda rng: f"https://example.org/p/{rng.randint(1000, 9999)}",
    "hashtag": lambda rng: rng.choice(("#mondaymood", "#justsaying", "#tbt", "#nofilter")),
}


def build(rows: Sequence[Example], seed: int = SEED) -> ProbeSet:
    """Each hand-written abusive text alone and with one suffix of each kind."""
    rng = random.Random(seed)
    alone = short_abuse()
    noisy = {kind: [f"{t} {make(rng)}" for t in alone] for kind, make in SUFFIXES.items()}
    texts = tuple(dict.fromkeys([*alone, *(t for v in noisy.values() for t in v)]))

    def report(lookup: Lookup) -> dict[str, Any]:
        base = toxic_actioned(lookup, alone)
        details: dict[str, Any] = {"alone": rate(int(base.sum()), len(base))}
        hits = {kind: toxic_actioned(lookup, v) for kind, v in noisy.items()}
        for kind, column in hits.items():
            entry = rate(int(column.sum()), len(column))
            entry["drop"] = round(float(base.mean() - column.mean()), 4)
            entry["example"] = noisy[kind][0]
            details[kind] = entry

        def worst_drop(index: np.ndarray) -> float:
            return float(max(base[index].mean() - c[index].mean() for c in hits.values()))

        value = worst_drop(np.arange(len(alone)))
        return target(
            value,
            paired_bootstrap(worst_drop, len(alone)),
            len(alone),
            f"with any suffix kind, actioned for toxicity >= alone - {MAX_DROP} (worst drop shown)",
            value <= MAX_DROP,
            details,
        )

    return ProbeSet(NAME, texts, report)
