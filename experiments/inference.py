"""Inference on ratio metrics over randomisation units: pure numpy/scipy, vectorised.

Every metric is ``R = ΣY / ΣX`` over units. Its variance is the delta method's,
``Var(R) ≈ n/(n-1) · Σ(Y - R·X)² / (ΣX)²``, which is cluster-robust: a user's posts enter
as one unit. The test variance of the difference is the larger of the sum of the two arms'
own and the pooled-under-H0 variance ``σ₀²·(1/ΣX_a + 1/ΣX_b)`` (σ₀²: residual variance per
unit of X around the pooled ratio of both arms; for independent binary outcomes this is the
pooled two-proportion z-test). The pooled term keeps a small arm with no successes (own
variance 0) from looking certain; the own term keeps clustering and unequal review weights.

A comparison counts (``valid``) only with at least ``MIN_UNITS`` units and ``MIN_EVENTS``
events and non-events in each arm: below that the normal approximation is not used.

Always-valid inference is the mixture SPRT (Johari, Pekelis & Walsh 2017; Howard et al. 2021
for the confidence sequence): at a look with difference θ̂ and variance V,
``Λ = sqrt(V/(V+τ²)) · exp(θ̂²τ² / (2V(V+τ²)))``, p is the running minimum of ``min(1, 1/Λ)``
and the confidence sequence is the running intersection of
``θ̂ ± sqrt(V(V+τ²)/τ² · (2 log(1/α) + log((V+τ²)/V)))``: valid however often one looks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from experiments.units import Floats, MetricColumns

Mask = NDArray[np.bool_]
MIN_UNITS = 20  # per arm
MIN_EVENTS = 10  # per arm, events and non-events (the rule of thumb for the normal approx.)


@dataclass(frozen=True, slots=True)
class Moments:
    """Sufficient sums of one arm's units (arrays of any shape: per look, per simulation)."""

    n: Floats
    sy: Floats
    sx: Floats
    syy: Floats
    sxx: Floats
    sxy: Floats
    events: Floats
    trials: Floats

    @classmethod
    def of(cls, cols: MetricColumns, mask: Mask) -> Moments:
        """Sums over the last axis (units) where ``mask``."""
        m = mask.astype(np.float64)
        y, x = np.where(mask, cols.y, 0.0), np.where(mask, cols.x, 0.0)
        return cls(
            n=m.sum(-1),
            sy=y.sum(-1),
            sx=x.sum(-1),
            syy=(y * y).sum(-1),
            sxx=(x * x).sum(-1),
            sxy=(x * y).sum(-1),
            events=(cols.events * m).sum(-1),
            trials=(cols.trials * m).sum(-1),
        )

    @classmethod
    def cumulative(cls, cols: MetricColumns, mask: Mask, marks: NDArray[np.intp]) -> Moments:
        """Sums over the first ``k + 1`` units (last axis) for each ``k`` in ``marks``
        (increasing): block sums between the marks, accumulated."""
        m = mask.astype(np.float64)
        y, x = np.where(mask, cols.y, 0.0), np.where(mask, cols.x, 0.0)
        starts = np.concatenate(([0], np.asarray(marks[:-1]) + 1)).astype(np.intp)

        def running(a: Floats) -> Floats:
            return np.cumsum(np.add.reduceat(a[..., : int(marks[-1]) + 1], starts, axis=-1), -1)

        return cls(
            n=running(m),
            sy=running(y),
            sx=running(x),
            syy=running(y * y),
            sxx=running(x * x),
            sxy=running(x * y),
            events=running(cols.events * m),
            trials=running(cols.trials * m),
        )

    def ratio(self) -> Floats:
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.sy / self.sx

    def residual_squares(self, ratio: Floats) -> Floats:
        """Σ(Y - ratio·X)² over the units, never below 0 (rounding)."""
        return np.maximum(self.syy - 2 * ratio * self.sxy + ratio * ratio * self.sxx, 0.0)


@dataclass(frozen=True, slots=True)
class Estimate:
    """Challenger against control (arrays of one shape): values, difference, its test
    variance, and whether the comparison counts."""

    control: Floats
    challenger: Floats
    difference: Floats
    variance: Floats
    valid: Mask
    control_variance: Floats  # each arm's own, for the lift's interval (NaN: not known)
    challenger_variance: Floats


def compare(control: Moments, challenger: Moments) -> Estimate:
    """Independent arms: the difference of ratios with the variance described above."""
    r_a, r_b = control.ratio(), challenger.ratio()
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled = (control.sy + challenger.sy) / (control.sx + challenger.sx)
        per_x = (control.residual_squares(pooled) + challenger.residual_squares(pooled)) / (
            control.sx + challenger.sx
        )
        own_variances, null = [], np.zeros_like(r_a)
        for arm, own in ((control, r_a), (challenger, r_b)):
            correction = arm.n / (arm.n - 1)
            own_variances.append(correction * arm.residual_squares(own) / (arm.sx * arm.sx))
            null = null + correction * per_x / arm.sx
        variance = np.maximum(own_variances[0] + own_variances[1], null)
    valid = _enough(control) & _enough(challenger) & np.isfinite(variance) & np.isfinite(r_a)
    valid &= np.isfinite(r_b)
    return Estimate(r_a, r_b, r_b - r_a, np.where(valid, variance, np.nan), valid, *own_variances)


def _enough(arm: Moments) -> Mask:
    return (
        (arm.n >= MIN_UNITS)
        & (arm.events >= MIN_EVENTS)
        & (arm.trials - arm.events >= MIN_EVENTS)
        & (arm.sx > 0)
    )


def compare_paired(control: MetricColumns, challenger: MetricColumns) -> Estimate:
    """Paired arms (a shadow scores the control's own units; row i is the same unit in both):
    the delta method on the per-unit difference of linearised ratios."""
    a, b = (Moments.of(c, np.ones(c.y.shape, dtype=bool)) for c in (control, challenger))
    r_a, r_b = a.ratio(), b.ratio()
    n = a.n
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled = (a.sy + b.sy) / (a.sx + b.sx)
        mean_a, mean_b = a.sx / n, b.sx / n
        own = (challenger.y - r_b * challenger.x) / mean_b - (control.y - r_a * control.x) / mean_a
        null = (challenger.y - pooled * challenger.x) / mean_b - (
            control.y - pooled * control.x
        ) / mean_a
        variance = np.maximum((own * own).sum(-1), (null * null).sum(-1)) / (n * (n - 1))
    valid = _enough(a) & _enough(b) & np.isfinite(variance) & (variance > 0)
    unknown = np.full_like(r_a, np.nan)  # paired: the lift interval takes the control as known
    return Estimate(r_a, r_b, r_b - r_a, np.where(valid, variance, np.nan), valid, unknown, unknown)


def quantile_estimate(
    values: Floats, unit_codes: NDArray[np.intp], q: float
) -> tuple[float, float]:
    """A quantile of per-post ``values`` and its variance when posts cluster in units
    (Deng, Knoblich & Lu 2018): the delta-method variance σ² of the share of posts at or
    below the quantile, carried to the value scale by the order statistics at q ± zσ."""
    from scipy.stats import norm

    estimate = float(np.quantile(values, q))
    units = int(unit_codes.max()) + 1
    below = np.bincount(
        unit_codes, weights=(values <= estimate).astype(np.float64), minlength=units
    )
    posts = np.bincount(unit_codes, minlength=units).astype(np.float64)
    share = below.sum() / posts.sum()
    residual = below - share * posts
    sigma = float(np.sqrt(units / (units - 1) * (residual @ residual)) / posts.sum())
    z = float(norm.ppf(0.975))
    low, high = np.quantile(values, [max(0.0, q - z * sigma), min(1.0, q + z * sigma)])
    return estimate, float(((high - low) / (2 * z)) ** 2)


@dataclass(frozen=True, slots=True)
class Interval:
    """A p-value and an interval for the difference and for the relative lift."""

    p: Floats
    low: Floats
    high: Floats
    lift: Floats
    lift_low: Floats
    lift_high: Floats


def fixed_horizon(estimate: Estimate, alpha: float) -> Interval:
    """Two-sided z-test and the (1 - alpha) interval (one look, planned in advance)."""
    from scipy.stats import norm

    with np.errstate(all="ignore"):  # invalid comparisons carry NaN on purpose
        se = np.sqrt(estimate.variance)
        z = np.where(se > 0, estimate.difference / se, 0.0)
        p = np.where(estimate.valid, 2 * norm.sf(np.abs(z)), 1.0)
        half = float(norm.ppf(1 - alpha / 2)) * se
    return _interval(estimate, p, half)


def always_valid(estimate: Estimate, alpha: float, mixing_sd: float) -> Interval:
    """The mSPRT over looks (the last axis, in time order): running-minimum p and the running
    intersection of the confidence sequence. Looks that do not count give p = 1, no bound."""
    with np.errstate(all="ignore"):  # invalid looks carry inf and NaN on purpose
        return _always_valid(estimate, alpha, mixing_sd * mixing_sd)


def _always_valid(estimate: Estimate, alpha: float, tau2: float) -> Interval:
    usable = estimate.valid & (estimate.variance > 0)
    v = np.where(usable, estimate.variance, 1.0)
    theta = np.where(usable, estimate.difference, 0.0)
    log_lambda = 0.5 * np.log(v / (v + tau2)) + theta * theta * tau2 / (2 * v * (v + tau2))
    p = np.minimum.accumulate(np.where(usable, np.minimum(1.0, np.exp(-log_lambda)), 1.0), -1)
    half = np.sqrt(v * (v + tau2) / tau2 * (2 * np.log(1 / alpha) + np.log((v + tau2) / v)))
    half = np.where(usable, half, np.inf)
    interval = _interval(estimate, p, half)
    low = np.maximum.accumulate(np.where(usable, interval.low, -np.inf), -1)
    high = np.minimum.accumulate(np.where(usable, interval.high, np.inf), -1)
    lift_low = np.maximum.accumulate(np.where(usable, interval.lift_low, -np.inf), -1)
    lift_high = np.minimum.accumulate(np.where(usable, interval.lift_high, np.inf), -1)
    return Interval(p, low, high, interval.lift, lift_low, lift_high)


def _interval(estimate: Estimate, p: Floats, half: Floats) -> Interval:
    """Intervals for the difference and for the lift ``R_b/R_a - 1``; the lift's by the delta
    method, ``Var ≈ (V_b + L²·V_a) / R_a²`` (L = R_b/R_a), scaled like the test variance."""
    with np.errstate(all="ignore"):  # invalid looks carry inf and NaN on purpose
        low, high = estimate.difference - half, estimate.difference + half
        base = np.abs(estimate.control)
        lift = estimate.difference / base
        ratio = estimate.challenger / estimate.control
        v_a, v_b = estimate.control_variance, estimate.challenger_variance
        share = np.sqrt((v_b + ratio * ratio * v_a) / (v_a + v_b))
        share = np.where(np.isfinite(share) & (share > 0), share, 1.0)
        scale = half * share / base
        return Interval(p, low, high, lift, lift - scale, lift + scale)


def holm(p_values: Floats) -> Floats:
    """Holm's step-down adjusted p-values (family-wise error ≤ alpha, any dependence)."""
    p = np.asarray(p_values, dtype=np.float64)
    if p.size == 0:
        return p
    order = np.argsort(p, kind="stable")
    m = p.size
    stepped = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def benjamini_hochberg(p_values: Floats) -> Floats:
    """Benjamini-Hochberg adjusted p-values (false discovery rate ≤ alpha)."""
    from scipy.stats import false_discovery_control

    p = np.asarray(p_values, dtype=np.float64)
    return p if p.size == 0 else np.asarray(false_discovery_control(p), dtype=np.float64)
