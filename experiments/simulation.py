"""Seeded, vectorised simulation of experiments at the unit level, for calibration.

Each simulated unit (a post, or a user with several posts) is drawn straight into the per-unit
counts the analysis reads (``experiments.units``), thousands of experiments at once: an
``(experiments, units, COMPONENTS)`` array and the arm of each unit. Units arrive in index
order. A per-unit random effect (a beta-distributed propensity with intra-class correlation
``icc``) makes one user's posts alike: one for acting, one for violating (shared by flags and
removals where their precision is the same), one for violations among allowed posts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from experiments.units import (
    ALLOW,
    COMPONENTS,
    FLAG,
    LATENCY_SUM,
    POSTS,
    REMOVE,
    REVIEWED,
    VIOLATIONS,
    Floats,
)


@dataclass(frozen=True, slots=True)
class ArmModel:
    """How one arm behaves. Precision is P(violation | flag or remove); ``missed`` is
    P(violation | allowed); review shares are per decision stratum (allow, flag, remove)."""

    weight: float
    action_rate: float = 0.2
    remove_share: float = 0.3
    precision_flag: float = 0.6
    precision_remove: float = 0.6
    missed: float = 0.05
    review_share: tuple[float, float, float] = (0.1, 1.0, 1.0)
    latency_ms: float = 50.0


@dataclass(frozen=True, slots=True)
class Population:
    """Who the units are: posts per unit (uniform between the bounds), the ICC of the
    per-unit effect on action and violation propensity, latency spread (ms)."""

    min_posts: int = 1
    max_posts: int = 1
    icc: float = 0.0
    latency_sd_ms: float = 15.0
    latency_unit_sd_ms: float = 0.0
    arms: tuple[ArmModel, ...] = field(default_factory=tuple)

    @property
    def mean_posts(self) -> float:
        return (self.min_posts + self.max_posts) / 2


def simulate(
    rng: np.random.Generator, population: Population, experiments: int, units: int
) -> tuple[Floats, NDArray[np.intp]]:
    """Counts ``(experiments, units, COMPONENTS)`` and arms ``(experiments, units)``."""
    shape = (experiments, units)
    weights = np.array([a.weight for a in population.arms])
    arm = rng.choice(len(weights), size=shape, p=weights / weights.sum()).astype(np.intp)

    def per_arm(values: list[float]) -> Floats:
        return np.asarray(values, dtype=np.float64)[arm]

    posts = rng.integers(population.min_posts, population.max_posts + 1, size=shape)
    act = _propensity(rng, per_arm([a.action_rate for a in population.arms]), population.icc)
    actioned = rng.binomial(posts, act)
    removed = rng.binomial(actioned, per_arm([a.remove_share for a in population.arms]))
    flagged = actioned - removed
    allowed = posts - actioned
    counts = np.zeros((*shape, COMPONENTS))
    strata = {
        ALLOW: (allowed, [a.missed for a in population.arms]),
        FLAG: (flagged, [a.precision_flag for a in population.arms]),
        REMOVE: (removed, [a.precision_remove for a in population.arms]),
    }
    shared: Floats | None = None  # a unit's violation propensity, when flag and remove agree
    same = per_arm([a.precision_flag - a.precision_remove for a in population.arms]) == 0
    for stratum, (n, rate) in strata.items():
        propensity = _propensity(rng, per_arm(rate), population.icc)
        if stratum == FLAG:
            shared = propensity
        elif stratum == REMOVE and shared is not None:
            propensity = np.where(same, shared, propensity)
        violations = rng.binomial(n, propensity)
        share = per_arm([a.review_share[stratum] for a in population.arms])
        seen_bad = rng.binomial(violations, share)
        seen_good = rng.binomial(n - violations, share)
        counts[..., POSTS + stratum] = n
        counts[..., REVIEWED + stratum] = seen_bad + seen_good
        counts[..., VIOLATIONS + stratum] = seen_bad
    unit_mean = per_arm([a.latency_ms for a in population.arms])
    if population.latency_unit_sd_ms:
        unit_mean = unit_mean + rng.normal(0.0, population.latency_unit_sd_ms, size=shape)
    noise = rng.normal(0.0, 1.0, size=shape) * np.sqrt(posts) * population.latency_sd_ms
    counts[..., LATENCY_SUM] = posts * unit_mean + noise
    return counts, arm


def _propensity(rng: np.random.Generator, mean: Floats, icc: float) -> Floats:
    """Per-unit probabilities with the given mean and intra-class correlation (beta)."""
    if icc <= 0:
        return mean
    concentration = (1 - icc) / icc  # ICC of a beta-binomial is 1 / (a + b + 1)
    return rng.beta(mean * concentration, (1 - mean) * concentration)
