"""Small statistics helpers the analysis shares: pure, numbers in, numbers out."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float64]
Indices = NDArray[np.intp]


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
