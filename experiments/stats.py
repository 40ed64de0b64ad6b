"""Small statistics helpers the analysis shares: pure, numbers in, numbers out."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from modq.errors import ExperimentError

Floats = NDArray[np.float64]
Indices = NDArray[np.intp]


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion."""
    from scipy.stats import norm

    if trials <= 0 or not 0 <= successes <= trials:
        raise ExperimentError(f"no interval for {successes} of {trials}")
    z = float(norm.ppf(0.5 + confidence / 2))
    share, z2 = successes / trials, z * z
    denominator = 1 + z2 / trials
    centre = (share + z2 / (2 * trials)) / denominator
    half = z * math.sqrt(share * (1 - share) / trials + z2 / (4 * trials * trials)) / denominator
    return max(0.0, min(share, centre - half)), min(1.0, max(share, centre + half))


def chi_square_fit(observed: Floats, expected: Floats) -> tuple[float, float]:
    """Goodness of fit (statistic, p); traffic where nothing is expected: (inf, 0)."""
    from scipy.stats import chisquare

    if np.any((expected == 0) & (observed > 0)):
        return math.inf, 0.0
    keep = expected > 0
    result = chisquare(observed[keep], expected[keep])
    return float(result.statistic), float(result.pvalue)


def checkpoints(length: int, looks: int) -> Indices:
    """At most ``looks`` positions evenly spread over ``range(length)``, the last included."""
    if length <= 0:
        return np.zeros(0, dtype=np.intp)
    return np.unique(np.linspace(0, length - 1, min(looks, length)).round().astype(np.intp))
