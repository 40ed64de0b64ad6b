"""Each challenger against the control on every metric, at every look: the estimates the
decision rule reads. Live challengers are independent samples of units; a shadow scores the
control's own units, so it is compared on pairs (``inference.compare_paired``).

At each look (a prefix of the rows in time order) the per-unit counts are rebuilt and the
review weights re-estimated, so the always-valid path uses only what was known then.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from experiments.columns import Columns, Mask
from experiments.inference import (
    MIN_EVENTS,
    MIN_UNITS,
    Estimate,
    Interval,
    Moments,
    always_valid,
    compare,
    compare_paired,
    fixed_horizon,
    quantile_estimate,
)
from experiments.outcomes import ArmPlan
from experiments.stats import checkpoints
from experiments.units import (
    METRICS,
    POSTS,
    QUANTILE_METRICS,
    Floats,
    metric_columns,
    strata_of,
)

# τ of the mSPRT mixture per metric: the size of effect it is most sensitive to
MIXING_SD = {
    "violations_actioned_per_1k": 20.0,
    "false_actions_per_1k": 20.0,
    "precision": 0.1,
    "recall": 0.1,
    "action_rate": 0.05,
    "remove_rate": 0.05,
    "latency_ms": 10.0,
    "latency_p95_ms": 20.0,
}


@dataclass(frozen=True, slots=True)
class Series:
    """One comparison over the looks: the last look's fixed-horizon result, the always-valid
    path, and where the looks fell (rows seen)."""

    metric: str
    challenger: int
    paired: bool
    last: Estimate  # 0-d arrays
    fixed: Interval
    sequential: Interval  # arrays over looks
    naive: Floats  # fixed-horizon p at each look, for the plot
    seen: Floats  # rows seen at each look
    valid: Mask  # whether each look counted


def compare_all(
    columns: Columns, arms: Sequence[ArmPlan], rows: Mask, alpha: float, looks: int
) -> list[Series]:
    """Every challenger (arms[1:]) against arms[0] on every metric, over ``looks`` looks of
    ``rows`` (a prefix in time order)."""
    marks = checkpoints(int(rows.sum()), looks)
    pairs = [(k, m) for k in range(1, len(arms)) for m in METRICS]
    found: dict[tuple[int, str], list[Estimate]] = {pair: [] for pair in pairs}
    for mark in marks:
        seen = rows & (np.arange(len(columns)) <= mark)
        counts = [columns.unit_counts(k, seen) for k in range(len(arms))]
        present = [_present(c) for c in counts]  # units with posts in that arm, once per look
        for k, metric in pairs:
            if metric in QUANTILE_METRICS:  # a shadow's too, as if independent (conservative)
                estimate = _quantile(columns, seen, k)
            elif arms[k].shadow:
                estimate = _paired(counts[0], counts[k], metric)
            else:
                estimate = compare(_moments(present[0], metric), _moments(present[k], metric))
            found[(k, metric)].append(estimate)
    series = []
    for (k, metric), estimates in found.items():
        path = Estimate(*(np.array([getattr(e, f) for e in estimates]) for f in Estimate.__slots__))
        last = Estimate(*(getattr(path, f)[-1] for f in Estimate.__slots__))
        series.append(
            Series(
                metric=metric,
                challenger=k,
                paired=arms[k].shadow,
                last=last,
                fixed=fixed_horizon(last, alpha),
                sequential=always_valid(path, alpha, MIXING_SD[metric]),
                naive=fixed_horizon(path, alpha).p,
                seen=(marks + 1).astype(np.float64),
                valid=path.valid,
            )
        )
    return series


def _present(counts: Floats) -> Floats:
    return counts[counts[:, POSTS : POSTS + 3].sum(1) > 0]


def _moments(present: Floats, metric: str) -> Moments:
    """One arm's sums for ``metric``, with the arm's own review strata."""
    cols = metric_columns(present, strata_of(present.sum(0)), metric)
    return Moments.of(cols, np.ones(len(present), dtype=bool))


def _paired(control: Floats, shadow: Floats, metric: str) -> Estimate:
    """A shadow against the control on the units both scored."""
    both = (control[:, POSTS : POSTS + 3].sum(1) > 0) & (shadow[:, POSTS : POSTS + 3].sum(1) > 0)
    c, s = control[both], shadow[both]
    return compare_paired(
        metric_columns(c, strata_of(c.sum(0)), metric),
        metric_columns(s, strata_of(s.sum(0)), metric),
    )


def _quantile(columns: Columns, seen: Mask, k: int) -> Estimate:
    values, variances, enough = [], [], True
    for arm in (0, k):
        mine = seen & (columns.arm == arm)
        _, codes = np.unique(columns.unit[mine], return_inverse=True)
        if codes.size == 0 or codes.max() + 1 < MIN_UNITS or mine.sum() < MIN_EVENTS / 0.05:
            values.append(np.nan)
            variances.append(np.nan)
            enough = False
            continue
        value, variance = quantile_estimate(columns.latency_ms[mine], codes.reshape(-1), 0.95)
        values.append(value)
        variances.append(variance)
    variance = float(variances[0] + variances[1])
    valid = enough and bool(np.isfinite(variance)) and variance > 0

    def array(value: float) -> Floats:
        return np.asarray(value, dtype=np.float64)

    return Estimate(
        array(values[0]),
        array(values[1]),
        array(values[1] - values[0]),
        array(variance if valid else np.nan),
        np.asarray(valid),
        array(variances[0]),
        array(variances[1]),
    )
