"""The statistics of an A/B experiment: observations in, an ``ExperimentAnalysis`` out. Pure.

Per arm: sample size, action/flag/remove rates, precision and recall against review labels
(Wilson intervals), F1 (seeded bootstrap interval), latency percentiles. Each arm after the
first is compared with the control (the first live arm) on every metric
(``experiments.comparisons``; the tests themselves are in ``experiments.stats``, the result
types in ``experiments.outcomes``, re-exported here).

Guards: a sample-ratio-mismatch check (chi-square of live assignment counts against the
weights; below ``SRM_P_THRESHOLD`` no comparison is trusted), and against peeking both a
planned sample size per live arm (no verdict before every live arm has reached it) and
always-valid p-values (mixture SPRT of Johari, Pekelis & Walsh 2017) over looks taken in
``assigned_at`` order. The mixing scale ``τ`` is the size of effect the test is tuned to:
``DEFAULT_MIXING_VARIANCE`` = 0.01 (τ = 0.1, ten points) for proportions,
``DEFAULT_LATENCY_MIXING_SD_MS`` = 10 ms for latency.

A comparison's verdict is "significant" only with no SRM alarm and p < alpha, where p is the
fixed-horizon p-value once the planned size is reached, or the always-valid p-value when no
size was planned. Observations are treated as independent units (content-level assignment).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from experiments.columns import ACTIONED, DECISIONS, Columns
from experiments.comparisons import Settings, compare_arms
from experiments.outcomes import (
    METRICS,
    PROPORTION_METRICS,
    SRM_P_THRESHOLD,
    AlwaysValidPath,
    ArmPlan,
    ArmSummary,
    Comparison,
    ExperimentAnalysis,
    LatencySummary,
    Observation,
    Proportion,
    SrmCheck,
    Verdict,
)
from experiments.stats import (
    BOOTSTRAP_DRAWS,
    MIN_TRIALS_PER_LOOK,
    Mask,
    chi_square_fit,
    f1_interval,
    planned_sample_size_for,
    wilson_interval,
)
from modq.errors import ExperimentError

__all__ = [  # callers import the result types and the helpers from here, as before
    "ACTIONED",
    "BOOTSTRAP_DRAWS",
    "DECISIONS",
    "DEFAULT_LATENCY_MIXING_SD_MS",
    "DEFAULT_LOOKS",
    "DEFAULT_MIXING_VARIANCE",
    "METRICS",
    "MIN_TRIALS_PER_LOOK",
    "PROPORTION_METRICS",
    "SRM_P_THRESHOLD",
    "AlwaysValidPath",
    "ArmPlan",
    "ArmSummary",
    "Comparison",
    "ExperimentAnalysis",
    "LatencySummary",
    "Observation",
    "Proportion",
    "SrmCheck",
    "Verdict",
    "analyze",
    "planned_sample_size_for",
    "wilson_interval",
]

DEFAULT_MIXING_VARIANCE = 0.01  # τ² for differences of proportions: τ = 0.1
DEFAULT_LATENCY_MIXING_SD_MS = 10.0  # τ for differences of mean latency, in ms
DEFAULT_LOOKS = 100  # checkpoints of the always-valid p-value, evenly spread over the data


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
    columns = Columns.build(observations, arms)
    summaries = tuple(_summarize_arm(columns, i, plan, alpha) for i, plan in enumerate(arms))
    srm = _srm_check(columns, arms)
    live_sizes = [s.sample_size for s in summaries if not s.shadow]
    reached = None if planned_sample_size is None else min(live_sizes) >= planned_sample_size
    settings = Settings(
        alpha=alpha,
        planned=planned_sample_size,
        reached=reached,
        srm_alarm=srm is not None and srm.alarm,
        primary_metric=primary_metric,
        mixing_variance=mixing_variance,
        latency_mixing_sd_ms=latency_mixing_sd_ms,
        looks=looks,
    )
    comparisons = tuple(  # nothing to compare before the first assignment
        comparison
        for challenger in (range(1, len(arms)) if len(columns.at) else ())
        for comparison in compare_arms(columns, arms, challenger, settings)
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


def _summarize_arm(columns: Columns, index: int, plan: ArmPlan, alpha: float) -> ArmSummary:
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
    f1_low, f1_high = f1_interval(counts, alpha)
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


def _srm_check(columns: Columns, arms: Sequence[ArmPlan]) -> SrmCheck | None:
    """Chi-square goodness of fit of the live arms' counts to their weights."""
    live = [(i, a) for i, a in enumerate(arms) if not a.shadow]
    observed = np.array([int((columns.arm == i).sum()) for i, _ in live], dtype=np.float64)
    weights = np.array([a.weight for _, a in live], dtype=np.float64)
    if len(live) < 2 or observed.sum() == 0 or weights.sum() <= 0:
        return None
    expected = observed.sum() * weights / weights.sum()
    statistic, p_value = chi_square_fit(observed, expected)
    return SrmCheck(
        arms=tuple(a.name for _, a in live),
        observed=tuple(int(x) for x in observed),
        expected=tuple(float(x) for x in expected),
        statistic=statistic,
        p_value=p_value,
        alarm=p_value < SRM_P_THRESHOLD,
    )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def _overall_verdict(
    columns: Columns,
    arms: Sequence[ArmSummary],
    comparisons: Sequence[Comparison],
    srm: SrmCheck | None,
    settings: Settings,
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
    if not len(columns.at):
        return Verdict.INSUFFICIENT, "no assignments yet: nothing to compare", tuple(warnings)
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
