"""Run every probe set against one judge: all texts deduplicated and judged in one call, then
each set reports its target (value, 95% interval, n, goal, met, details)."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

from training.datasets import Example
from training.judge import Judge
from training.probes import evasion, hate, identity, insults, languages, long_text, mail, noise
from training.probes.base import ProbeSet

# the order targets are shown in (the card's table follows it)
TARGET_ORDER = (
    long_text.NAME,
    evasion.NAME,
    evasion.CLEAN_NAME,
    noise.NAME,
    identity.NAME,
    hate.NAME,
    languages.NAME,
    mail.NAME,
    insults.NAME,
)


def build_sets(evaluation_rows: Sequence[Example]) -> list[ProbeSet]:
    """Every probe set, built from the hand-written data and the evaluation rows (seeded)."""
    return [
        long_text.build(evaluation_rows),
        *evasion.build(evaluation_rows),
        noise.build(evaluation_rows),
        identity.build(evaluation_rows),
        hate.build(evaluation_rows),
        languages.build(evaluation_rows),
        mail.build(evaluation_rows),
        insults.build(evaluation_rows),
    ]


def probe_texts(sets: Sequence[ProbeSet]) -> list[str]:
    """Every text the sets need, deduplicated, in a fixed order."""
    return list(dict.fromkeys(t for s in sets for t in s.texts))


def _log(message: str) -> None:
    print(f"probes: {message}", file=sys.stderr, flush=True)


def run_probes(judge: Judge, evaluation_rows: Sequence[Example]) -> dict[str, Any]:
    """``{"targets": {set: entry}, "texts": n, "seconds": s}``; each entry has value, ci95,
    n, goal, met (None: reported without a goal) and details."""
    started = time.monotonic()
    sets = build_sets(evaluation_rows)
    texts = probe_texts(sets)
    sizes = ", ".join(f"{s.name} {len(s.texts)}" for s in sets)
    _log(f"judging {len(texts)} distinct texts ({sizes}) …")
    judged = judge(texts)
    lookup = dict(zip(texts, judged, strict=True))
    _log(f"judged {len(texts)} texts in {time.monotonic() - started:.0f}s")
    targets = {s.name: s.report(lookup) for s in sets}
    met = sum(1 for t in targets.values() if t["met"])
    goals = sum(1 for t in targets.values() if t["met"] is not None)
    _log(f"{met} of {goals} targets met")
    return {
        "targets": {name: targets[name] for name in TARGET_ORDER if name in targets},
        "texts": len(texts),
        "seconds": round(time.monotonic() - started, 1),
    }
