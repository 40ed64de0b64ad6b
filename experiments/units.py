"""Per-unit counts and the metrics built from them: the unit of analysis is the unit of
randomisation. Pure numpy; every function works on arrays with any leading axes (one
experiment, or thousands of simulated ones at once).

A unit's row holds, per decision stratum (allow, flag, remove): its posts, how many of them a
reviewer labelled, and how many of those were violations; and the sum of its latencies. Each
metric is a ratio ``sum(Y) / sum(X)`` over units (Y and X per unit), analysed with the delta
method, so posts of one user are never treated as independent.

Review sampling: reviewed items are taken as a random sample of their (arm, decision)
stratum, weighted by the inverse of the stratum's review share (Horvitz-Thompson with the
share estimated, i.e. post-stratification). Non-actioned items reviewed at random (an audit
sample) make recall unbiased; without any, recall is not estimable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float64]

STRATA = ("allow", "flag", "remove")
ALLOW, FLAG, REMOVE = 0, 1, 2
POSTS, REVIEWED, VIOLATIONS, LATENCY_SUM = 0, 3, 6, 9  # offsets of the blocks in a row
COMPONENTS = 10

RATIO_METRICS = (
    "violations_actioned_per_1k",
    "false_actions_per_1k",
    "precision",
    "recall",
    "action_rate",
    "remove_rate",
    "latency_ms",
)
QUANTILE_METRICS = ("latency_p95_ms",)
METRICS = (*RATIO_METRICS, *QUANTILE_METRICS)
REVIEWED_METRICS = frozenset(
    {"violations_actioned_per_1k", "false_actions_per_1k", "precision", "recall"}
)
# the direction in which each metric is better (a guardrail's harm is the other way)
BETTER_WHEN_HIGHER = {
    "violations_actioned_per_1k": True,
    "false_actions_per_1k": False,
    "precision": True,
    "recall": True,
    "latency_ms": False,
    "latency_p95_ms": False,
}


@dataclass(frozen=True, slots=True)
class MetricColumns:
    """One metric per unit: ratio ``y / x`` and the unweighted events and trials that the
    minimum-count rule reads (a look counts only with enough of both per arm)."""

    y: Floats
    x: Floats
    events: Floats
    trials: Floats


@dataclass(frozen=True, slots=True)
class Strata:
    """Per decision stratum of one arm (..., 3): the inverse review share, and the share of
    reviewed items that were violations. NaN where a stratum has posts but no review: what
    needs it is not estimable."""

    weight: Floats
    violation_share: Floats

    def per_unit(self, arm: NDArray[np.intp]) -> Strata:
        """Arm-level strata (experiments, arms, 3) spread to units (experiments, units, 3)."""
        index = arm[..., None].repeat(3, -1)
        return Strata(
            np.take_along_axis(self.weight, index, -2),
            np.take_along_axis(self.violation_share, index, -2),
        )


def strata_of(totals: Floats) -> Strata:
    """From an arm's summed row (..., COMPONENTS)."""
    posts = totals[..., POSTS : POSTS + 3]
    reviewed = totals[..., REVIEWED : REVIEWED + 3]
    violations = totals[..., VIOLATIONS : VIOLATIONS + 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        weight = np.where(reviewed > 0, posts / np.maximum(reviewed, 1), np.nan)
        share = np.where(reviewed > 0, violations / np.maximum(reviewed, 1), np.nan)
    return Strata(np.where(posts > 0, weight, 0.0), np.where(posts > 0, share, 0.0))


def metric_columns(counts: Floats, strata: Strata, metric: str) -> MetricColumns:
    """``counts`` (..., units, COMPONENTS); ``strata`` per unit (..., units, 3) or
    broadcastable. Labelled totals are post-stratified: a stratum's violations are its posts
    times its reviewed violation share, and each unit carries its linearised part,
    ``w·(V − p̂·R) + p̂·N`` (so the delta method sees the sampling of reviews, and with every
    item reviewed this is just V)."""
    c = counts
    posts = c[..., 0] + c[..., 1] + c[..., 2]
    actioned = c[..., 1] + c[..., 2]

    def violations(stratum: int) -> Floats:
        w, p = strata.weight[..., stratum], strata.violation_share[..., stratum]
        spread = c[..., VIOLATIONS + stratum] - p * c[..., REVIEWED + stratum]
        return w * spread + p * c[..., POSTS + stratum]

    true_actions = violations(FLAG) + violations(REMOVE)
    hit = c[..., VIOLATIONS + 1] + c[..., VIOLATIONS + 2]
    seen_actioned = c[..., REVIEWED + 1] + c[..., REVIEWED + 2]
    if metric == "action_rate":
        return MetricColumns(actioned, posts, actioned, posts)
    if metric == "remove_rate":
        return MetricColumns(c[..., 2], posts, c[..., 2], posts)
    if metric == "latency_ms":
        return MetricColumns(c[..., LATENCY_SUM], posts, posts, 2 * posts)
    if metric == "precision":
        return MetricColumns(true_actions, actioned, hit, seen_actioned)
    if metric == "recall":
        x = true_actions + violations(ALLOW)
        return MetricColumns(true_actions, x, hit, hit + c[..., VIOLATIONS + ALLOW])
    if metric == "violations_actioned_per_1k":
        return MetricColumns(1000 * true_actions, posts, hit, posts)
    if metric == "false_actions_per_1k":
        false = actioned - true_actions
        return MetricColumns(1000 * false, posts, seen_actioned - hit, posts)
    raise ValueError(f"no ratio metric {metric!r}")
