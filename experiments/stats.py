"""The statistics behind ``experiments.analysis``: numbers and arrays in, numbers out. Pure.

Sequential functions take cumulative counts at checkpoints ("looks", from ``checkpoints``)
and return ``Looks``: the test statistic, the fixed-horizon p-value and the always-valid
p-value at each look. The always-valid p-value is the mixture SPRT of Johari, Pekelis &
Walsh (2017), normal approximation: at a look with estimated difference θ̂ and its variance
V, ``Λ = sqrt(V/(V+τ²)) · exp(θ̂²τ² / (2V(V+τ²)))``, and p is the running minimum of
``min(1, 1/Λ)`` over looks. scipy is imported inside the functions that need it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from modq.errors import ExperimentError

MIN_TRIALS_PER_LOOK = 20  # per arm: below this a look's normal approximation is not used
BOOTSTRAP_DRAWS = 2000  # F1 interval; seeded, so the report is reproducible
_BOOTSTRAP_SEED = 20170101

Floats = NDArray[np.float64]
Mask = NDArray[np.bool_]
Indices = NDArray[np.intp]


@dataclass(frozen=True, slots=True)
class Looks:
    """One sequential test, evaluated at each look (arrays of equal length)."""

    statistic: Floats
    fixed_horizon: Floats  # p-value of a test stopped at that look
    always_valid: Floats  # running minimum of the mSPRT p-value
    valid: Mask  # enough data at that look for the normal approximation


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


def planned_sample_size_for(
    p_control: float, minimum_detectable_effect: float, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Units per arm for a two-sided two-proportion z-test to detect ``p_control`` moving by
    ``minimum_detectable_effect`` (absolute) with ``power``. For precision the units are
    reviewed actioned items: divide by (action rate x review share) for assignments per arm."""
    from scipy.stats import norm

    p_challenger = p_control + minimum_detectable_effect
    if not (0 < p_control < 1 and 0 < p_challenger < 1 and minimum_detectable_effect != 0):
        raise ExperimentError(
            f"no sample size for p={p_control} moving by {minimum_detectable_effect}",
            field="minimum_detectable_effect",
        )
    if not (0 < alpha < 1 and 0 < power < 1):
        raise ExperimentError("alpha and power must be in (0, 1)", field="alpha")
    z_alpha, z_power = float(norm.ppf(1 - alpha / 2)), float(norm.ppf(power))
    mean = (p_control + p_challenger) / 2
    spread = z_alpha * math.sqrt(2 * mean * (1 - mean)) + z_power * math.sqrt(
        p_control * (1 - p_control) + p_challenger * (1 - p_challenger)
    )
    return math.ceil(spread**2 / minimum_detectable_effect**2)


def f1_interval(counts: Sequence[int], alpha: float) -> tuple[float | None, float | None]:
    """Percentile bootstrap of F1 = 2TP/(2TP+FP+FN): multinomial redraws of (TP, FP, FN, TN)."""
    total = sum(counts)
    if total == 0 or counts[0] == 0:
        return None, None
    rng = np.random.default_rng(_BOOTSTRAP_SEED)
    draws = rng.multinomial(total, np.asarray(counts) / total, size=BOOTSTRAP_DRAWS)
    tp, fp, fn = draws[:, 0], draws[:, 1], draws[:, 2]
    denominator = 2 * tp + fp + fn
    f1 = 2 * tp[denominator > 0] / denominator[denominator > 0]
    low, high = np.quantile(f1, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


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
    return np.unique(np.linspace(0, length - 1, min(looks, length)).round().astype(np.intp))


def msprt_path(theta: Floats, variance: Floats, tau2: float, valid: Mask) -> Floats:
    """Running minimum of min(1, 1/Λ) over looks; looks that are not valid count as p = 1."""
    usable = valid & (variance > 0) & np.isfinite(theta)
    v = np.where(usable, variance, 1.0)
    t = np.where(usable, theta, 0.0)
    log_lambda = 0.5 * np.log(v / (v + tau2)) + t * t * tau2 / (2 * v * (v + tau2))
    p = np.where(usable, np.minimum(1.0, np.exp(-log_lambda)), 1.0)
    return np.minimum.accumulate(p)


def z_test_p(x1: Floats, n1: Floats, x2: Floats, n2: Floats) -> tuple[Floats, Floats]:
    """Two-sided pooled two-proportion z-test, elementwise: (z, p)."""
    from scipy.stats import norm

    with np.errstate(divide="ignore", invalid="ignore"):
        pooled = (x1 + x2) / (n1 + n2)
        se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        z = np.where(se > 0, (x2 / n2 - x1 / n1) / se, 0.0)
    return z, np.where(se > 0, 2 * norm.sf(np.abs(z)), 1.0)


def two_proportion_looks(x1: Floats, n1: Floats, x2: Floats, n2: Floats, tau2: float) -> Looks:
    """Cumulative successes and trials of two independent arms at each look."""
    z, fixed = z_test_p(x1, n1, x2, n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p1, p2 = x1 / n1, x2 / n2
        variance = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
    valid = (n1 >= MIN_TRIALS_PER_LOOK) & (n2 >= MIN_TRIALS_PER_LOOK)
    return Looks(z, fixed, msprt_path(p2 - p1, variance, tau2, valid), valid)


def welch_looks(values: Floats, first: Mask, second: Mask, marks: Indices, tau: float) -> Looks:
    """Welch's t-test of ``values[second]`` against ``values[first]`` over the rows up to each
    look in ``marks``; the mSPRT on the difference of means with mixing sd ``tau``."""
    from scipy.stats import t as student_t

    centred = values - (values.mean() if values.size else 0.0)
    moments = []
    for mask in (first, second):
        n = np.cumsum(mask, dtype=np.float64)[marks]
        total = np.cumsum(np.where(mask, centred, 0.0))[marks]
        squares = np.cumsum(np.where(mask, centred * centred, 0.0))[marks]
        with np.errstate(divide="ignore", invalid="ignore"):
            variance = np.maximum(squares - total * total / n, 0.0) / (n - 1)
            moments.append((n, total / n, variance / n))
    (n1, m1, s1), (n2, m2, s2) = moments
    valid = (n1 >= MIN_TRIALS_PER_LOOK) & (n2 >= MIN_TRIALS_PER_LOOK)
    se2 = np.where(valid, s1 + s2, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(valid & (se2 > 0), (m2 - m1) / np.sqrt(se2), 0.0)
        df = se2 * se2 / (s1 * s1 / (n1 - 1) + s2 * s2 / (n2 - 1))
        fixed = np.where(
            valid & (se2 > 0), 2 * student_t.sf(np.abs(t), np.nan_to_num(df, nan=1)), 1.0
        )
    return Looks(t, fixed, msprt_path(m2 - m1, se2, tau * tau, valid), valid)


def welch_test(first: Floats, second: Floats) -> tuple[float | None, float | None]:
    """Welch's t-test of ``second`` against ``first``: (t, p); (0, 1) for two constant samples,
    (None, None) with fewer than two values on a side."""
    from scipy.stats import ttest_ind

    if first.size < 2 or second.size < 2:
        return None, None
    with warnings.catch_warnings():  # constant samples: scipy warns, we answer below
        warnings.simplefilter("ignore", RuntimeWarning)
        result = ttest_ind(second, first, equal_var=False)
    if math.isfinite(result.pvalue):
        return float(result.statistic), float(result.pvalue)
    return 0.0, 1.0  # both constant


def mcnemar_looks(in_first: Mask, in_second: Mask, marks: Indices, tau2: float) -> Looks:
    """Paired binary outcomes (one position per pair, in order): exact McNemar on the
    discordant pairs up to each look (statistic: pairs only second minus pairs only first);
    the mSPRT on the paired difference of shares."""
    from scipy.stats import binom

    only_second = np.cumsum(in_second & ~in_first, dtype=np.float64)[marks]
    only_first = np.cumsum(in_first & ~in_second, dtype=np.float64)[marks]
    n = (marks + 1).astype(np.float64)
    discordant = only_first + only_second
    fixed = np.where(
        discordant > 0,
        np.minimum(1.0, 2 * binom.cdf(np.minimum(only_first, only_second), discordant, 0.5)),
        1.0,
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        theta = (only_second - only_first) / n
        variance = (discordant - (only_second - only_first) ** 2 / n) / (n - 1) / n
    valid = n >= MIN_TRIALS_PER_LOOK
    return Looks(only_second - only_first, fixed, msprt_path(theta, variance, tau2, valid), valid)
