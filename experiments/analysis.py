"""The statistics of an A/B experiment: observations in, an ``ExperimentAnalysis`` out. Pure.

Per arm: sample size, action/flag/remove rates, precision and recall against review labels
(Wilson intervals), F1 (seeded bootstrap interval), latency percentiles.

Each arm after the first is compared with the control (the first live arm), on every metric;
the ``test`` field of a ``Comparison`` names the test used:

- live arm, rates/precision/recall: two-proportion z-test (pooled), independent samples;
- shadow arm (it scores the control's content too, so samples pair on ``content_id``):
  McNemar exact (binomial test on the discordant pairs) for action and remove rates; the
  z-test on the paired content for precision and recall (it ignores the pairing, which is
  conservative for positively correlated arms);
- latency: Welch's t-test (unequal variances).

Guards: a sample-ratio-mismatch check (chi-square of live assignment counts against the
weights; below ``SRM_P_THRESHOLD`` no comparison is trusted), and against peeking both a
planned sample size per live arm (no verdict before every live arm has reached it) and
always-valid p-values from the mixture SPRT of Johari, Pekelis & Walsh (2017), normal
approximation: at a look with estimated difference θ̂ and its variance V,
``Λ = sqrt(V/(V+τ²)) · exp(θ̂²τ² / (2V(V+τ²)))``, and the always-valid p-value is the running
minimum of ``min(1, 1/Λ)`` over looks taken in ``assigned_at`` order. ``τ`` is the size of
effect the test is tuned to: ``DEFAULT_MIXING_VARIANCE`` = 0.01 (τ = 0.1, ten points) for
proportions, ``DEFAULT_LATENCY_MIXING_SD_MS`` = 10 ms for latency.

A comparison's verdict is "significant" only with no SRM alarm and p < alpha, where p is the
fixed-horizon p-value once the planned size is reached, or the always-valid p-value when no
size was planned. Observations are treated as independent units (content-level assignment).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, fields, is_dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import numpy as np
from numpy.typing import NDArray

from modq.errors import ExperimentError

DECISIONS = frozenset({"allow", "flag", "remove"})
ACTIONED = frozenset({"flag", "remove"})
PROPORTION_METRICS = ("action_rate", "remove_rate", "precision", "recall")
METRICS = (*PROPORTION_METRICS, "latency_ms")
SRM_P_THRESHOLD = 0.001  # below this the split is broken: comparisons are not to be trusted
DEFAULT_MIXING_VARIANCE = 0.01  # τ² for differences of proportions: τ = 0.1
DEFAULT_LATENCY_MIXING_SD_MS = 10.0  # τ for differences of mean latency, in ms
DEFAULT_LOOKS = 100  # checkpoints of the always-valid p-value, evenly spread over the data
MIN_TRIALS_PER_LOOK = 20  # per arm: below this a look's normal approximation is not used
BOOTSTRAP_DRAWS = 2000  # F1 interval; seeded, so the report is reproducible
_BOOTSTRAP_SEED = 20170101

Floats = NDArray[np.float64]
Mask = NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Observation:
    """One assignment of one unit to one variant, with what it produced and its review label."""

    variant: str
    shadow: bool
    content_id: str
    decision: str  # "allow" | "flag" | "remove"
    latency_ms: float
    assigned_at: datetime  # tz-aware
    violation: bool | None  # human review: True violation, False safe, None not reviewed


@dataclass(frozen=True, slots=True)
class ArmPlan:
    name: str
    weight: float  # share of live traffic; 0 for shadow
    shadow: bool


class Verdict(StrEnum):
    SIGNIFICANT = "significant"
    NOT_SIGNIFICANT = "not significant"
    KEEP_RUNNING = "keep running"  # planned sample size not reached
    UNTRUSTED = "untrusted (SRM)"  # sample-ratio mismatch
    INSUFFICIENT = "insufficient data"


@dataclass(frozen=True, slots=True)
class Proportion:
    """``successes`` of ``trials`` with a Wilson interval at ``1 - alpha`` (None: no trials)."""

    successes: int
    trials: int
    estimate: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True, slots=True)
class LatencySummary:
    count: int
    mean_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    quantiles_ms: tuple[float, ...] = ()  # at 0, 1, ..., 100 %: the distribution, for plots


@dataclass(frozen=True, slots=True)
class ArmSummary:
    name: str
    shadow: bool
    weight: float
    sample_size: int
    reviewed: int
    action_rate: Proportion  # flag or remove, of all
    flag_rate: Proportion
    remove_rate: Proportion
    precision: Proportion  # violations of reviewed actioned
    recall: Proportion  # actioned of reviewed violations
    f1: float | None
    f1_low: float | None
    f1_high: float | None
    latency: LatencySummary


@dataclass(frozen=True, slots=True)
class AlwaysValidPath:
    """The p-values at each look, ``seen`` observations into the experiment (time order)."""

    seen: tuple[int, ...]
    at: tuple[datetime, ...]
    always_valid: tuple[float, ...]  # running minimum: valid however often one looks
    fixed_horizon: tuple[float, ...]  # what a naive test would say if one stopped there


@dataclass(frozen=True, slots=True)
class Comparison:
    control: str
    challenger: str
    metric: str  # one of METRICS
    test: str
    paired: bool
    control_value: float | None
    challenger_value: float | None
    difference: float | None  # challenger - control
    control_n: int  # trials (pairs when paired)
    challenger_n: int
    statistic: float | None
    p_value: float | None  # fixed horizon
    always_valid_p_value: float | None
    verdict: Verdict
    decided_on: str  # which p-value the verdict rests on
    primary: bool
    note: str
    path: AlwaysValidPath


@dataclass(frozen=True, slots=True)
class SrmCheck:
    arms: tuple[str, ...]
    observed: tuple[int, ...]
    expected: tuple[float, ...]
    statistic: float
    p_value: float
    alarm: bool
    threshold: float = SRM_P_THRESHOLD


@dataclass(frozen=True, slots=True)
class ExperimentAnalysis:
    experiment_id: str
    alpha: float
    planned_sample_size: int | None  # per live arm
    planned_sample_size_reached: bool | None  # None: nothing planned
    primary_metric: str
    observations: int
    first_assigned_at: datetime | None
    last_assigned_at: datetime | None
    arms: tuple[ArmSummary, ...]
    comparisons: tuple[Comparison, ...]
    srm: SrmCheck | None  # None with fewer than two live arms
    srm_alarm: bool
    warnings: tuple[str, ...]  # most serious first
    verdict: Verdict
    verdict_text: str
    mixing_variance: float
    latency_mixing_sd_ms: float

    def arm(self, name: str) -> ArmSummary:
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise ExperimentError(f"no arm {name!r} in the analysis", variant=name)

    def comparison(self, challenger: str, metric: str) -> Comparison:
        for comparison in self.comparisons:
            if comparison.challenger == challenger and comparison.metric == metric:
                return comparison
        raise ExperimentError(f"no comparison of {challenger!r} on {metric!r}", variant=challenger)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: datetimes as ISO strings, tuples as lists, NaN and inf as None."""
        result = _jsonable(self)
        assert isinstance(result, dict)
        return result


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, StrEnum):
        return str(value.value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


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


@dataclass(frozen=True, slots=True)
class _Columns:
    """All observations as arrays, in ``assigned_at`` order."""

    arm: NDArray[np.intp]
    actioned: Mask
    flagged: Mask
    removed: Mask
    reviewed: Mask
    violation: Mask  # False where not reviewed
    latency_ms: Floats
    content_ids: tuple[str, ...]
    at: tuple[datetime, ...]

    @classmethod
    def build(cls, observations: Sequence[Observation], plans: Sequence[ArmPlan]) -> _Columns:
        index = {plan.name: i for i, plan in enumerate(plans)}
        ordered = sorted(observations, key=lambda o: o.assigned_at)
        for o in ordered:
            if o.variant not in index:
                raise ExperimentError(f"observation for unknown variant {o.variant!r}")
            if o.decision not in DECISIONS:
                raise ExperimentError(f"unknown decision {o.decision!r} for {o.content_id!r}")
        decision = np.array([o.decision for o in ordered], dtype=object)
        return cls(
            arm=np.array([index[o.variant] for o in ordered], dtype=np.intp),
            actioned=decision != "allow",
            flagged=decision == "flag",
            removed=decision == "remove",
            reviewed=np.array([o.violation is not None for o in ordered], dtype=bool),
            violation=np.array([o.violation is True for o in ordered], dtype=bool),
            latency_ms=np.array([o.latency_ms for o in ordered], dtype=np.float64),
            content_ids=tuple(o.content_id for o in ordered),
            at=tuple(o.assigned_at for o in ordered),
        )

    def trials_and_successes(self, metric: str) -> tuple[Mask, Mask]:
        everyone = np.ones_like(self.actioned)
        return {
            "action_rate": (everyone, self.actioned),
            "remove_rate": (everyone, self.removed),
            "precision": (self.actioned & self.reviewed, self.violation),
            "recall": (self.reviewed & self.violation, self.actioned),
        }[metric]


@dataclass(frozen=True, slots=True)
class _Settings:
    alpha: float
    planned: int | None
    reached: bool | None
    srm_alarm: bool
    primary_metric: str
    mixing_variance: float
    latency_mixing_sd_ms: float
    looks: int


def analyze(
    observations: Sequence[Observation],
    arms: Sequence[ArmPlan],
    *,
    alpha: float = 0.05,
    planned_sample_size: int | None = None,
    experiment_id: str = "",
    primary_metric: str = "precision",
    mixing_variance: float = DEFAULT_MIXING_VARIANCE,
    latency_mixing_sd_ms: float = DEFAULT_LATENCY_MIXING_SD_MS,
    looks: int = DEFAULT_LOOKS,
) -> ExperimentAnalysis:
    """Analyse an experiment; ``arms[0]`` is the control (a live arm), order is kept. The
    overall verdict rests on ``primary_metric``; the other metrics are reported beside it."""
    _check_arguments(arms, alpha, planned_sample_size, primary_metric, looks)
    columns = _Columns.build(observations, arms)
    summaries = tuple(_summarize_arm(columns, i, plan, alpha) for i, plan in enumerate(arms))
    srm = _srm_check(columns, arms)
    live_sizes = [s.sample_size for s in summaries if not s.shadow]
    reached = None if planned_sample_size is None else min(live_sizes) >= planned_sample_size
    settings = _Settings(
        alpha=alpha,
        planned=planned_sample_size,
        reached=reached,
        srm_alarm=srm is not None and srm.alarm,
        primary_metric=primary_metric,
        mixing_variance=mixing_variance,
        latency_mixing_sd_ms=latency_mixing_sd_ms,
        looks=looks,
    )
    comparisons = tuple(
        comparison
        for challenger in range(1, len(arms))
        for comparison in _compare_arms(columns, arms, challenger, settings)
    )
    verdict, verdict_text, warnings = _overall_verdict(
        columns, summaries, comparisons, srm, settings
    )
    return ExperimentAnalysis(
        experiment_id=experiment_id,
        alpha=alpha,
        planned_sample_size=planned_sample_size,
        planned_sample_size_reached=reached,
        primary_metric=primary_metric,
        observations=len(columns.at),
        first_assigned_at=columns.at[0] if columns.at else None,
        last_assigned_at=columns.at[-1] if columns.at else None,
        arms=summaries,
        comparisons=comparisons,
        srm=srm,
        srm_alarm=settings.srm_alarm,
        warnings=warnings,
        verdict=verdict,
        verdict_text=verdict_text,
        mixing_variance=mixing_variance,
        latency_mixing_sd_ms=latency_mixing_sd_ms,
    )


def _check_arguments(
    arms: Sequence[ArmPlan], alpha: float, planned: int | None, primary: str, looks: int
) -> None:
    if not arms or arms[0].shadow:
        raise ExperimentError("the first arm is the control and must be a live arm")
    names = [a.name for a in arms]
    if len(set(names)) != len(names):
        raise ExperimentError(f"arm names repeat: {names}")
    if not 0 < alpha < 1:
        raise ExperimentError(f"alpha must be in (0, 1), got {alpha}", field="alpha")
    if planned is not None and planned < 1:
        raise ExperimentError("planned sample size must be at least 1")
    if primary not in METRICS:
        raise ExperimentError(f"primary metric must be one of {', '.join(METRICS)}")
    if looks < 1:
        raise ExperimentError("at least one look")


def _proportion(successes: Mask, trials: Mask, confidence: float) -> Proportion:
    hits, count = int((successes & trials).sum()), int(trials.sum())
    if count == 0:
        return Proportion(0, 0, None, None, None)
    low, high = wilson_interval(hits, count, confidence)
    return Proportion(hits, count, hits / count, low, high)


def _f1_interval(counts: Sequence[int], alpha: float) -> tuple[float | None, float | None]:
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


def _summarize_arm(columns: _Columns, index: int, plan: ArmPlan, alpha: float) -> ArmSummary:
    mine = columns.arm == index
    confidence = 1 - alpha
    rates = {
        metric: _proportion(success, trials & mine, confidence)
        for metric in PROPORTION_METRICS
        for trials, success in [columns.trials_and_successes(metric)]
    }
    reviewed = mine & columns.reviewed
    act, bad = columns.actioned, columns.violation
    counts = [int((reviewed & a & v).sum()) for a, v in ((act, bad), (act, ~bad), (~act, bad))]
    counts.append(int(reviewed.sum()) - sum(counts))
    denominator = 2 * counts[0] + counts[1] + counts[2]
    f1 = 2 * counts[0] / denominator if denominator else None
    f1_low, f1_high = _f1_interval(counts, alpha)
    latency = columns.latency_ms[mine]
    if latency.size:
        quantiles = np.percentile(latency, np.arange(101))
        latency_summary = LatencySummary(
            count=int(latency.size),
            mean_ms=float(latency.mean()),
            p50_ms=float(quantiles[50]),
            p95_ms=float(quantiles[95]),
            p99_ms=float(quantiles[99]),
            quantiles_ms=tuple(float(q) for q in quantiles),
        )
    else:
        latency_summary = LatencySummary(0, None, None, None, None)
    return ArmSummary(
        name=plan.name,
        shadow=plan.shadow,
        weight=plan.weight,
        sample_size=int(mine.sum()),
        reviewed=int(reviewed.sum()),
        action_rate=rates["action_rate"],
        flag_rate=_proportion(columns.flagged, mine, confidence),
        remove_rate=rates["remove_rate"],
        precision=rates["precision"],
        recall=rates["recall"],
        f1=f1,
        f1_low=f1_low,
        f1_high=f1_high,
        latency=latency_summary,
    )


def _srm_check(columns: _Columns, arms: Sequence[ArmPlan]) -> SrmCheck | None:
    """Chi-square goodness of fit of the live arms' counts to their weights."""
    from scipy.stats import chisquare

    live = [(i, a) for i, a in enumerate(arms) if not a.shadow]
    observed = np.array([int((columns.arm == i).sum()) for i, _ in live], dtype=np.float64)
    weights = np.array([a.weight for _, a in live], dtype=np.float64)
    if len(live) < 2 or observed.sum() == 0 or weights.sum() <= 0:
        return None
    expected = observed.sum() * weights / weights.sum()
    if np.any((expected == 0) & (observed > 0)):  # traffic on an arm with no share
        statistic, p_value = math.inf, 0.0
    else:
        keep = expected > 0
        result = chisquare(observed[keep], expected[keep])
        statistic, p_value = float(result.statistic), float(result.pvalue)
    return SrmCheck(
        arms=tuple(a.name for _, a in live),
        observed=tuple(int(x) for x in observed),
        expected=tuple(float(x) for x in expected),
        statistic=statistic,
        p_value=p_value,
        alarm=p_value < SRM_P_THRESHOLD,
    )


def _checkpoints(length: int, looks: int) -> NDArray[np.intp]:
    return np.unique(np.linspace(0, length - 1, min(looks, length)).round().astype(np.intp))


def _msprt_path(theta: Floats, variance: Floats, tau2: float, valid: Mask) -> Floats:
    """Running minimum of min(1, 1/Λ) over looks; looks that are not valid count as p = 1."""
    usable = valid & (variance > 0) & np.isfinite(theta)
    v = np.where(usable, variance, 1.0)
    t = np.where(usable, theta, 0.0)
    log_lambda = 0.5 * np.log(v / (v + tau2)) + t * t * tau2 / (2 * v * (v + tau2))
    p = np.where(usable, np.minimum(1.0, np.exp(-log_lambda)), 1.0)
    return np.minimum.accumulate(p)


def _z_test_p(x1: Floats, n1: Floats, x2: Floats, n2: Floats) -> tuple[Floats, Floats]:
    """Two-sided pooled two-proportion z-test, elementwise: (z, p)."""
    from scipy.stats import norm

    with np.errstate(divide="ignore", invalid="ignore"):
        pooled = (x1 + x2) / (n1 + n2)
        se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        z = np.where(se > 0, (x2 / n2 - x1 / n1) / se, 0.0)
    return z, np.where(se > 0, 2 * norm.sf(np.abs(z)), 1.0)


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


def _path(
    seen: NDArray[np.intp], at: Sequence[datetime], av: Floats, fixed: Floats, valid: Mask
) -> AlwaysValidPath:
    return AlwaysValidPath(
        seen=tuple(int(s) for s in seen[valid]),
        at=tuple(at[int(i)] for i in np.flatnonzero(valid)),
        always_valid=tuple(float(p) for p in av[valid]),
        fixed_horizon=tuple(float(p) for p in fixed[valid]),
    )


def _two_proportions(
    columns: _Columns, metric: str, a: int, b: int, rows: Mask, tau2: float, looks: int
) -> _Raw:
    trials, successes = columns.trials_and_successes(metric)
    marks = _checkpoints(len(columns.at), looks)
    cum = [
        np.cumsum(m, dtype=np.float64)[marks]
        for m in _arm_masks(columns, trials, successes, rows, a, b)
    ]
    n1, x1, n2, x2 = cum
    z, fixed = _z_test_p(x1, n1, x2, n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p1, p2 = x1 / n1, x2 / n2
        variance = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
    valid = (n1 >= MIN_TRIALS_PER_LOOK) & (n2 >= MIN_TRIALS_PER_LOOK)
    av = _msprt_path(p2 - p1, variance, tau2, valid)
    enough = n1[-1] > 0 and n2[-1] > 0
    at = [columns.at[int(i)] for i in marks]
    return _Raw(
        metric=metric,
        test="two-proportion z-test",
        paired=False,
        control_value=float(p1[-1]) if n1[-1] else None,
        challenger_value=float(p2[-1]) if n2[-1] else None,
        control_n=int(n1[-1]),
        challenger_n=int(n2[-1]),
        statistic=float(z[-1]) if enough else None,
        p_value=float(fixed[-1]) if enough else None,
        note="",
        path=_path(marks + 1, at, av, fixed, valid),
    )


def _arm_masks(
    columns: _Columns, trials: Mask, successes: Mask, rows: Mask, a: int, b: int
) -> list[Mask]:
    first, second = trials & rows & (columns.arm == a), trials & rows & (columns.arm == b)
    return [first, first & successes, second, second & successes]


def _welch(columns: _Columns, a: int, b: int, rows: Mask, tau: float, looks: int) -> _Raw:
    from scipy.stats import t as student_t
    from scipy.stats import ttest_ind

    marks = _checkpoints(len(columns.at), looks)
    centred = columns.latency_ms - (columns.latency_ms.mean() if columns.at else 0.0)
    stats = []
    for arm in (a, b):
        mask = rows & (columns.arm == arm)
        n = np.cumsum(mask, dtype=np.float64)[marks]
        total = np.cumsum(np.where(mask, centred, 0.0))[marks]
        squares = np.cumsum(np.where(mask, centred * centred, 0.0))[marks]
        with np.errstate(divide="ignore", invalid="ignore"):
            variance = np.maximum(squares - total * total / n, 0.0) / (n - 1)
            stats.append((n, total / n, variance / n))
    (n1, m1, s1), (n2, m2, s2) = stats
    valid = (n1 >= MIN_TRIALS_PER_LOOK) & (n2 >= MIN_TRIALS_PER_LOOK)
    se2 = np.where(valid, s1 + s2, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(valid & (se2 > 0), (m2 - m1) / np.sqrt(se2), 0.0)
        df = se2 * se2 / (s1 * s1 / (n1 - 1) + s2 * s2 / (n2 - 1))
        fixed = np.where(
            valid & (se2 > 0), 2 * student_t.sf(np.abs(t), np.nan_to_num(df, nan=1)), 1.0
        )
    av = _msprt_path(m2 - m1, se2, tau * tau, valid)
    first = columns.latency_ms[rows & (columns.arm == a)]
    second = columns.latency_ms[rows & (columns.arm == b)]
    statistic = p_value = None
    if first.size >= 2 and second.size >= 2:
        with warnings.catch_warnings():  # constant samples: scipy warns, we answer below
            warnings.simplefilter("ignore", RuntimeWarning)
            result = ttest_ind(second, first, equal_var=False)
        if math.isfinite(result.pvalue):
            statistic, p_value = float(result.statistic), float(result.pvalue)
        else:  # both constant
            statistic, p_value = 0.0, 1.0
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
        path=_path(marks + 1, [columns.at[int(i)] for i in marks], av, fixed, valid),
    )


def _pairs(columns: _Columns, a: int, b: int) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
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
    columns: _Columns,
    metric: str,
    pairs: tuple[NDArray[np.intp], NDArray[np.intp]],
    tau2: float,
    looks: int,
) -> _Raw:
    """Exact McNemar on the discordant pairs; the always-valid path uses the paired difference."""
    from scipy.stats import binom

    rows_a, rows_b = pairs
    hit = columns.actioned if metric == "action_rate" else columns.removed
    verb = "actioned" if metric == "action_rate" else "removed"
    in_a, in_b = hit[rows_a], hit[rows_b]
    marks = _checkpoints(max(len(rows_a), 1), looks)
    if len(rows_a) == 0:
        marks = np.array([], dtype=np.intp)
    only_b = np.cumsum(in_b & ~in_a, dtype=np.float64)[marks]
    only_a = np.cumsum(in_a & ~in_b, dtype=np.float64)[marks]
    n = (marks + 1).astype(np.float64)
    discordant = only_a + only_b
    fixed = np.where(
        discordant > 0,
        np.minimum(1.0, 2 * binom.cdf(np.minimum(only_a, only_b), discordant, 0.5)),
        1.0,
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        theta = (only_b - only_a) / n
        variance = (discordant - (only_b - only_a) ** 2 / n) / (n - 1) / n
    valid = n >= MIN_TRIALS_PER_LOOK
    av = _msprt_path(theta, variance, tau2, valid)
    later = np.maximum(rows_a, rows_b)[marks]  # the pair is complete at its later row
    at = [columns.at[int(row)] for row in later]
    seen = later + 1
    size = len(rows_a)
    return _Raw(
        metric=metric,
        test="McNemar exact (paired)",
        paired=True,
        control_value=float(in_a.mean()) if size else None,
        challenger_value=float(in_b.mean()) if size else None,
        control_n=size,
        challenger_n=size,
        statistic=float(only_b[-1] - only_a[-1]) if size else None,
        p_value=float(fixed[-1]) if size else None,
        note=(
            f"{int(only_b[-1])} pairs only the challenger {verb},"
            f" {int(only_a[-1])} only the control"
            if size
            else "no content scored by both"
        ),
        path=_path(seen, at, av, fixed, valid),
    )


def _compare_arms(
    columns: _Columns, arms: Sequence[ArmPlan], challenger: int, settings: _Settings
) -> list[Comparison]:
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


def _replace_raw(raw: _Raw, **changes: Any) -> _Raw:
    values = {f.name: getattr(raw, f.name) for f in fields(raw)}
    values.update(changes, paired=True)
    return _Raw(**values)


def _judge(raw: _Raw, control: str, challenger: str, settings: _Settings) -> Comparison:
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


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def _overall_verdict(
    columns: _Columns,
    arms: Sequence[ArmSummary],
    comparisons: Sequence[Comparison],
    srm: SrmCheck | None,
    settings: _Settings,
) -> tuple[Verdict, str, tuple[str, ...]]:
    warnings: list[str] = []
    smallest = min(a.sample_size for a in arms if not a.shadow)
    if srm is not None and srm.alarm:
        counts = ", ".join(f"{n}={c}" for n, c in zip(srm.arms, srm.observed, strict=True))
        warnings.append(
            f"SAMPLE-RATIO MISMATCH (chi-square p = {srm.p_value:.2g} < {srm.threshold}; {counts}):"
            " the split is broken, comparisons are not to be trusted"
        )
    if settings.planned is not None and not settings.reached:
        warnings.append(
            f"planned sample size not reached ({smallest} of {settings.planned} in the smallest"
            " live arm): do not stop/decide on these p-values"
        )
    if settings.planned is None:
        warnings.append("no planned sample size: verdicts rest on always-valid (mSPRT) p-values")
    actioned = columns.actioned
    if actioned.any() and (~actioned).any():
        seen_actioned = float(columns.reviewed[actioned].mean())
        seen_allowed = float(columns.reviewed[~actioned].mean())
        if seen_actioned > 0 and seen_allowed < 0.5 * seen_actioned:
            warnings.append(
                f"reviewers saw {seen_actioned:.0%} of actioned but {seen_allowed:.0%} of allowed"
                " content: recall is estimated on reviewed items and biased upward"
            )
    if not columns.reviewed.any():
        warnings.append("no review labels yet: precision and recall are unavailable")
    primary = [c for c in comparisons if c.primary]
    if not comparisons:
        return Verdict.INSUFFICIENT, "only one arm: nothing to compare", tuple(warnings)
    if srm is not None and srm.alarm:
        return Verdict.UNTRUSTED, "do not trust: sample-ratio mismatch", tuple(warnings)
    if settings.planned is not None and not settings.reached:
        text = f"keep running: {smallest} of {settings.planned} planned units in the smallest arm"
        return Verdict.KEEP_RUNNING, text, tuple(warnings)
    secondary = [
        f"{c.challenger} {c.metric}"
        for c in comparisons
        if c.verdict is Verdict.SIGNIFICANT and not c.primary
    ]
    also = f" (also significant, secondary: {', '.join(secondary)})" if secondary else ""
    winners = [c for c in primary if c.verdict is Verdict.SIGNIFICANT]
    if winners:
        text = "; ".join(
            f"{c.challenger} vs {c.control} on {c.metric}: {_fmt(c.challenger_value)} vs"
            f" {_fmt(c.control_value)} ({c.difference:+.3g}, p = {_fmt(c.p_value)},"
            f" always-valid p = {_fmt(c.always_valid_p_value)})"
            for c in winners
        )
        return Verdict.SIGNIFICANT, f"significant: {text}{also}", tuple(warnings)
    if all(c.verdict is Verdict.INSUFFICIENT for c in primary):
        text = f"insufficient data on {settings.primary_metric}{also}"
        return Verdict.INSUFFICIENT, text, tuple(warnings)
    text = f"no significant difference on {settings.primary_metric}{also}"
    return Verdict.NOT_SIGNIFICANT, text, tuple(warnings)
