"""How many units an experiment needs: per-arm action rates, the review share, posts per unit
and their intra-class correlation, the split and the number of challengers. Pure.

The primary metric is a ratio over units; its variance per arm is
``σ²_item · deff / (units · items per unit)``, with the design effect of unequal clusters
``deff = 1 + (E[c²]/E[c] − 1)·ICC`` (c: the items of one unit the metric counts: posts for
rates, reviewed actioned posts for precision). Each challenger is tested at alpha / m
(Bonferroni, what Holm's first step needs with m challengers), two-sided. The size is the
number of units in the smallest live arm: the analysis freezes when every live arm has it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from modq.errors import ExperimentError

PLANNABLE = ("precision", "action_rate", "remove_rate", "violations_actioned_per_1k")


@dataclass(frozen=True, slots=True)
class PlanInputs:
    """``values[k]``: the metric in live arm k (control first) under the effect to detect;
    ``action_rates[k]``: share of posts flagged or removed in arm k; ``weights[k]``: its share
    of traffic; posts per unit are uniform in [min_posts, max_posts]."""

    metric: str
    values: tuple[float, ...]
    action_rates: tuple[float, ...]
    weights: tuple[float, ...]
    review_share: float = 1.0
    min_posts: int = 1
    max_posts: int = 1
    icc: float = 0.0
    alpha: float = 0.05
    power: float = 0.8
    variance_inflation: tuple[float, ...] = ()  # per arm, from unequal review weights

    def __post_init__(self) -> None:
        arms = len(self.values)
        if self.metric not in PLANNABLE:
            raise ExperimentError(f"the planner knows {', '.join(PLANNABLE)}, not {self.metric!r}")
        if arms < 2 or len(self.action_rates) != arms or len(self.weights) != arms:
            raise ExperimentError("give a value, an action rate and a weight for every live arm")
        checks = [
            all(0 < a <= 1 for a in self.action_rates),
            all(w > 0 for w in self.weights),
            0 < self.review_share <= 1,
            1 <= self.min_posts <= self.max_posts,
            0 <= self.icc < 1,
            0 < self.alpha < 1 and 0 < self.power < 1,
            self.metric == "violations_actioned_per_1k" or all(0 < v < 1 for v in self.values),
        ]
        if not all(checks):
            raise ExperimentError(f"planner inputs out of range: {self}")
        if all(v == self.values[0] for v in self.values[1:]):
            raise ExperimentError("no effect to detect: every arm has the same value")


@dataclass(frozen=True, slots=True)
class Plan:
    units_smallest_arm: int  # the planned sample size the analysis freezes at
    units_total: int
    units_per_arm: tuple[int, ...]
    reviewed_items_per_arm: tuple[float, ...]  # expected items the metric is measured on
    design_effect: tuple[float, ...]
    alpha_per_test: float


def _posts_moments(inputs: PlanInputs) -> tuple[float, float]:
    """E[m] and E[m²] of posts per unit, uniform on the integers between the bounds."""
    posts = range(inputs.min_posts, inputs.max_posts + 1)
    return sum(posts) / len(posts), sum(m * m for m in posts) / len(posts)


def _per_unit(inputs: PlanInputs, arm: int, pooled: float | None) -> tuple[float, float, float]:
    """(variance of the linearised metric per unit, items per unit, design effect); with
    ``pooled`` the variance the arm would have at the pooled value (the test's null term)."""
    mean_m, mean_m2 = _posts_moments(inputs)
    rho, action, share = inputs.icc, inputs.action_rates[arm], inputs.review_share
    value = inputs.values[arm]
    if inputs.metric == "precision":
        # actioned per unit: beta-binomial; reviewed: a binomial share of those
        second = mean_m * action * (1 - action) * (1 + (mean_m2 / mean_m - 1) * rho)
        second += mean_m2 * action * action
        items = mean_m * action * share
        items2 = share * share * second + share * (1 - share) * mean_m * action
    else:
        items, items2 = mean_m, mean_m2
    value = value if pooled is None else pooled
    if inputs.metric == "violations_actioned_per_1k":
        rate = value / 1000  # violations actioned per post; measured on reviewed ones
        variance = (rate / share - rate * rate) * 1e6
    else:
        variance = value * (1 - value)
    deff = 1 + (items2 / items - 1) * rho
    if inputs.variance_inflation:
        variance *= inputs.variance_inflation[arm]
    return variance * deff / items, items, deff


def plan(inputs: PlanInputs) -> Plan:
    """The smallest experiment in which every challenger's effect is found with ``power``."""
    from scipy.stats import norm

    challengers = len(inputs.values) - 1
    alpha_each = inputs.alpha / challengers
    z = float(norm.ppf(1 - alpha_each / 2) + norm.ppf(inputs.power))
    total = 0.0
    for k in range(1, challengers + 1):
        if inputs.values[k] == inputs.values[0]:
            continue  # no effect to find in this one
        total = max(
            total, z * z * _variance_factor(inputs, k) / (inputs.values[k] - inputs.values[0]) ** 2
        )
    return _plan_for(inputs, math.ceil(total), alpha_each)


def _variance_factor(inputs: PlanInputs, k: int) -> float:
    """Var(difference) × total units, for challenger k against control: like the test, the
    larger of the arms' own variances and the pooled-under-H0 one."""
    sums = []
    for pooled in (None, _pooled(inputs, k)):
        factor = 0.0
        for arm in (0, k):
            per_unit, _, _ = _per_unit(inputs, arm, pooled)
            factor += per_unit / (inputs.weights[arm] / sum(inputs.weights))
        sums.append(factor)
    return max(sums)


def _pooled(inputs: PlanInputs, k: int) -> float:
    w = [inputs.weights[0], inputs.weights[k]]
    v = [inputs.values[0], inputs.values[k]]
    if inputs.metric == "precision":
        w = [w[0] * inputs.action_rates[0], w[1] * inputs.action_rates[k]]
    return (w[0] * v[0] + w[1] * v[1]) / (w[0] + w[1])


def _plan_for(inputs: PlanInputs, total: int, alpha_each: float) -> Plan:
    shares = [w / sum(inputs.weights) for w in inputs.weights]
    per_arm = tuple(math.ceil(total * s) for s in shares)
    details = [_per_unit(inputs, k, None) for k in range(len(shares))]
    return Plan(
        units_smallest_arm=min(per_arm),
        units_total=total,
        units_per_arm=per_arm,
        reviewed_items_per_arm=tuple(n * d[1] for n, d in zip(per_arm, details, strict=True)),
        design_effect=tuple(d[2] for d in details),
        alpha_per_test=alpha_each,
    )


def review_weighting_inflation(
    precision_flag: float,
    precision_remove: float,
    remove_share: float,
    review_flag: float,
    review_remove: float,
) -> float:
    """How much sampling reviews by decision (weighted back by inverse share) inflates the
    variance of precision per actioned item, against reviewing every one:
    ``(Σ_d π_d p_d(1-p_d)/s_d + π_f π_r (p_f - p_r)²) / (p(1-p))``."""
    shares = (
        (1 - remove_share, precision_flag, review_flag),
        (remove_share, precision_remove, review_remove),
    )
    overall = sum(pi * p for pi, p, _ in shares)
    within = sum(pi * p * (1 - p) / s for pi, p, s in shares)
    between = (1 - remove_share) * remove_share * (precision_flag - precision_remove) ** 2
    return (within + between) / (overall * (1 - overall))


def power_at(inputs: PlanInputs, units_total: int, challenger: int = 1) -> float:
    """The power of challenger ``challenger``'s test with ``units_total`` units in all."""
    from scipy.stats import norm

    alpha_each = inputs.alpha / (len(inputs.values) - 1)
    se = math.sqrt(_variance_factor(inputs, challenger) / units_total)
    shift = abs(inputs.values[challenger] - inputs.values[0]) / se
    return float(norm.cdf(shift - norm.ppf(1 - alpha_each / 2)))
