"""What every probe set shares: the set itself, rates with Wilson intervals, paired bootstrap
intervals, the target entry, and the hand-written data files."""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.datasets import TOXICITY_CATEGORIES
from training.judge import Judgement
from training.metrics import wilson_interval

DATA_DIR = Path(__file__).resolve().parent / "data"
BOOTSTRAP_RESAMPLES = 200
BOOTSTRAP_SEED = 0

Lookup = Mapping[str, Judgement]  # text -> its judgement


@dataclass(frozen=True)
class ProbeSet:
    """A probe set: the texts it needs judged and how it reports on their judgements."""

    name: str
    texts: tuple[str, ...]
    report: Callable[[Lookup], dict[str, Any]]


def target(
    value: float | None,
    ci95: Sequence[float] | None,
    n: int,
    goal: str,
    met: bool | None,
    details: Mapping[str, Any],
) -> dict[str, Any]:
    """One target's entry: measured value, 95% interval, n, goal (words), met (None: no goal)."""
    return {
        "value": None if value is None else round(float(value), 4),
        "ci95": None if ci95 is None else [round(float(x), 4) for x in ci95],
        "n": int(n),
        "goal": goal,
        "met": met,
        "details": dict(details),
    }


def rate(hits: int, total: int) -> dict[str, Any]:
    """A proportion with its 95% Wilson interval."""
    return {
        "value": round(hits / total, 4) if total else None,
        "ci95": wilson_interval(hits, total),
        "hits": int(hits),
        "n": int(total),
    }


def actioned(lookup: Lookup, texts: Sequence[str]) -> np.ndarray:
    """Per text: flagged or removed."""
    return np.array([lookup[t].actioned for t in texts], dtype=bool)


def toxic_actioned(lookup: Lookup, texts: Sequence[str]) -> np.ndarray:
    """Per text: flagged or removed for a toxicity category (violence, adult, hate speech,
    harassment), so that a spam flag on benign filler or junk never counts as catching abuse."""
    toxic = set(TOXICITY_CATEGORIES)
    return np.array([bool(toxic & set(lookup[t].tripped)) for t in texts], dtype=bool)


def max_toxicity(judgement: Judgement) -> float:
    """The highest toxicity-category score (what offensive-vs-not AUCs rank by)."""
    return max((judgement.scores.get(c, 0.0) for c in TOXICITY_CATEGORIES), default=0.0)


def paired_bootstrap(statistic: Callable[[np.ndarray], float | None], n: int) -> list[float] | None:
    """95% percentile interval of ``statistic(indices)`` over items resampled with
    replacement (the same resample for every column the statistic pairs)."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    values = []
    for _ in range(BOOTSTRAP_RESAMPLES):
        value = statistic(rng.integers(0, n, n))
        if value is not None:
            values.append(value)
    if not values:
        return None
    low, high = np.percentile(values, [2.5, 97.5])
    return [round(float(low), 4), round(float(high), 4)]


def read_csv(name: str) -> list[dict[str, str]]:
    """Rows of a hand-written CSV under data/."""
    with open(DATA_DIR / name, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def read_lines(name: str) -> list[str]:
    """Non-empty lines of a hand-written text file under data/."""
    lines = (DATA_DIR / name).read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip()]


def short_abuse() -> list[str]:
    """The hand-written short threats and insults (``abuse_short.csv``)."""
    return [row["text"] for row in read_csv("abuse_short.csv")]


def word_count(text: str) -> int:
    return len(text.split())
