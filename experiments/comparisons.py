"""Each challenger against the control, on every metric, with a verdict per comparison.

Live arm, rates/precision/recall: two-proportion z-test (pooled), independent samples. Shadow
arm (it scores the control's content too, so samples pair on ``content_id``): McNemar exact
for action and remove rates; the z-test on the paired content for precision and recall
(ignoring the pairing: conservative for positively correlated arms). Latency: Welch's t-test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import numpy as np

from experiments.columns import Columns
from experiments.outcomes import PROPORTION_METRICS, AlwaysValidPath, ArmPlan, Comparison, Verdict
from experiments.stats import (
    Indices,
    Looks,
    Mask,
    checkpoints,
    mcnemar_looks,
    two_proportion_looks,
    welch_looks,
    welch_test,
)


@dataclass(frozen=True, slots=True)
class Settings:
    """What judging needs to know about the experiment as a whole."""

    alpha: float
    planned: int | None
    reached: bool | None
    srm_alarm: bool
    primary_metric: str
    mixing_variance: float
    latency_mixing_sd_ms: float
    looks: int


@dataclass(frozen=True, slots=True)
class _Raw:
    """A comparison before the verdict: values at the end and the path over looks."""

    metric: str
    test: str
    paired: bool
    control_value: float | None
    challenger_value: float | None
    control_n: int
    challenger_n: int
    statistic: float | None
    p_value: float | None
    note: str
    path: AlwaysValidPath


def compare_arms(
    columns: Columns, arms: Sequence[ArmPlan], challenger: int, settings: Settings
) -> list[Comparison]:
    """``arms[challenger]`` against the control ``arms[0]`` on every metric, judged."""
    tau2, looks = settings.mixing_variance, settings.looks
    raws: list[_Raw] = []
    rows = np.ones(len(columns.at), dtype=bool)
    if arms[challenger].shadow:
        pairs = _pairs(columns, 0, challenger)
        rows = np.zeros(len(columns.at), dtype=bool)
        rows[pairs[0]] = rows[pairs[1]] = True
        raws += [_mcnemar(columns, m, pairs, tau2, looks) for m in ("action_rate", "remove_rate")]
        for metric in ("precision", "recall"):
            raw = _two_proportions(columns, metric, 0, challenger, rows, tau2, looks)
            note = "paired samples (same content); the z-test ignores the pairing: conservative"
            raws.append(_replace_raw(raw, test="two-proportion z-test (paired samples)", note=note))
    else:
        raws += [
            _two_proportions(columns, m, 0, challenger, rows, tau2, looks)
            for m in PROPORTION_METRICS
        ]
    raws.append(_welch(columns, 0, challenger, rows, settings.latency_mixing_sd_ms, looks))
    return [_judge(raw, arms[0].name, arms[challenger].name, settings) for raw in raws]


def _path(seen: Indices, at: Sequence[datetime], looks: Looks) -> AlwaysValidPath:
    valid = looks.valid
    return AlwaysValidPath(
        seen=tuple(int(s) for s in seen[valid]),
        at=tuple(at[int(i)] for i in np.flatnonzero(valid)),
        always_valid=tuple(float(p) for p in looks.always_valid[valid]),
        fixed_horizon=tuple(float(p) for p in looks.fixed_horizon[valid]),
    )


def _two_proportions(
    columns: Columns, metric: str, a: int, b: int, rows: Mask, tau2: float, looks: int
) -> _Raw:
    trials, successes = columns.trials_and_successes(metric)
    marks = checkpoints(len(columns.at), looks)
    first, second = trials & rows & (columns.arm == a), trials & rows & (columns.arm == b)
    n1, x1, n2, x2 = (
        np.cumsum(m, dtype=np.float64)[marks]
        for m in (first, first & successes, second, second & successes)
    )
    result = two_proportion_looks(x1, n1, x2, n2, tau2)
    enough = n1[-1] > 0 and n2[-1] > 0
    at = [columns.at[int(i)] for i in marks]
    return _Raw(
        metric=metric,
        test="two-proportion z-test",
        paired=False,
        control_value=float(x1[-1] / n1[-1]) if n1[-1] else None,
        challenger_value=float(x2[-1] / n2[-1]) if n2[-1] else None,
        control_n=int(n1[-1]),
        challenger_n=int(n2[-1]),
        statistic=float(result.statistic[-1]) if enough else None,
        p_value=float(result.fixed_horizon[-1]) if enough else None,
        note="",
        path=_path(marks + 1, at, result),
    )


def _welch(columns: Columns, a: int, b: int, rows: Mask, tau: float, looks: int) -> _Raw:
    marks = checkpoints(len(columns.at), looks)
    in_a, in_b = rows & (columns.arm == a), rows & (columns.arm == b)
    result = welch_looks(columns.latency_ms, in_a, in_b, marks, tau)
    first, second = columns.latency_ms[in_a], columns.latency_ms[in_b]
    statistic, p_value = welch_test(first, second)
    return _Raw(
        metric="latency_ms",
        test="Welch t-test",
        paired=False,
        control_value=float(first.mean()) if first.size else None,
        challenger_value=float(second.mean()) if second.size else None,
        control_n=int(first.size),
        challenger_n=int(second.size),
        statistic=statistic,
        p_value=p_value,
        note="means in ms",
        path=_path(marks + 1, [columns.at[int(i)] for i in marks], result),
    )


def _pairs(columns: Columns, a: int, b: int) -> tuple[Indices, Indices]:
    """Row positions of (control, shadow) for each content both scored, ordered by the later."""
    control: dict[str, int] = {}
    shadow: dict[str, int] = {}
    for row, (arm, content) in enumerate(zip(columns.arm, columns.content_ids, strict=True)):
        if arm == a:
            control.setdefault(content, row)
        elif arm == b:
            shadow.setdefault(content, row)
    both = sorted(control.keys() & shadow.keys(), key=lambda c: max(control[c], shadow[c]))
    return (
        np.array([control[c] for c in both], dtype=np.intp),
        np.array([shadow[c] for c in both], dtype=np.intp),
    )


def _mcnemar(
    columns: Columns, metric: str, pairs: tuple[Indices, Indices], tau2: float, looks: int
) -> _Raw:
    """Exact McNemar on the discordant pairs; the always-valid path uses the paired difference."""
    rows_a, rows_b = pairs
    hit = columns.actioned if metric == "action_rate" else columns.removed
    verb = "actioned" if metric == "action_rate" else "removed"
    in_a, in_b = hit[rows_a], hit[rows_b]
    size = len(rows_a)
    marks = checkpoints(size, looks) if size else np.array([], dtype=np.intp)
    result = mcnemar_looks(in_a, in_b, marks, tau2)
    later = np.maximum(rows_a, rows_b)[marks]  # the pair is complete at its later row
    at = [columns.at[int(row)] for row in later]
    only_b, only_a = int((in_b & ~in_a).sum()), int((in_a & ~in_b).sum())
    return _Raw(
        metric=metric,
        test="McNemar exact (paired)",
        paired=True,
        control_value=float(in_a.mean()) if size else None,
        challenger_value=float(in_b.mean()) if size else None,
        control_n=size,
        challenger_n=size,
        statistic=float(result.statistic[-1]) if size else None,
        p_value=float(result.fixed_horizon[-1]) if size else None,
        note=(
            f"{only_b} pairs only the challenger {verb}, {only_a} only the control"
            if size
            else "no content scored by both"
        ),
        path=_path(later + 1, at, result),
    )


def _replace_raw(raw: _Raw, **changes: Any) -> _Raw:
    values = {f.name: getattr(raw, f.name) for f in fields(raw)}
    values.update(changes, paired=True)
    return _Raw(**values)


def _judge(raw: _Raw, control: str, challenger: str, settings: Settings) -> Comparison:
    av = (
        raw.path.always_valid[-1]
        if raw.path.always_valid
        else (1.0 if raw.p_value is not None else None)
    )
    if settings.planned is None:
        decisive, decided_on = av, "always-valid p (no planned sample size)"
    else:
        decisive, decided_on = raw.p_value, "fixed-horizon p at the planned sample size"
    if raw.p_value is None:
        verdict = Verdict.INSUFFICIENT
    elif settings.srm_alarm:
        verdict = Verdict.UNTRUSTED
    elif settings.planned is not None and not settings.reached:
        verdict = Verdict.KEEP_RUNNING
    elif decisive is not None and decisive < settings.alpha:
        verdict = Verdict.SIGNIFICANT
    else:
        verdict = Verdict.NOT_SIGNIFICANT
    both = raw.control_value is not None and raw.challenger_value is not None
    return Comparison(
        control=control,
        challenger=challenger,
        metric=raw.metric,
        test=raw.test,
        paired=raw.paired,
        control_value=raw.control_value,
        challenger_value=raw.challenger_value,
        difference=raw.challenger_value - raw.control_value if both else None,  # type: ignore[operator]
        control_n=raw.control_n,
        challenger_n=raw.challenger_n,
        statistic=raw.statistic,
        p_value=raw.p_value,
        always_valid_p_value=av,
        verdict=verdict,
        decided_on=decided_on,
        primary=raw.metric == settings.primary_metric,
        note=raw.note,
        path=raw.path,
    )
