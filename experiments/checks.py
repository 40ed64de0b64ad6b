"""Per-arm summaries and the checks on the experiment as a whole: sample-ratio mismatch on
distinct units, review coverage per arm and decision stratum. Pure."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from experiments.columns import Columns, Mask
from experiments.inference import Moments, quantile_estimate
from experiments.outcomes import (
    COVERAGE_P_THRESHOLD,
    SRM_P_THRESHOLD,
    ArmPlan,
    ArmSummary,
    CoverageCell,
    CoverageCheck,
    MetricValue,
    SrmCheck,
)
from experiments.stats import chi_square_fit
from experiments.units import POSTS, RATIO_METRICS, REVIEWED, STRATA, metric_columns, strata_of


def summarize_arm(columns: Columns, k: int, plan: ArmPlan, rows: Mask, alpha: float) -> ArmSummary:
    from scipy.stats import norm

    counts = columns.unit_counts(k, rows)
    counts = counts[counts[:, POSTS : POSTS + 3].sum(1) > 0]
    totals = counts.sum(0)
    z = float(norm.ppf(1 - alpha / 2))
    metrics: dict[str, MetricValue] = {}
    for metric in RATIO_METRICS:
        cols = metric_columns(counts, strata_of(totals), metric)
        m = Moments.of(cols, np.ones(len(counts), dtype=bool))
        value = float(m.ratio()) if m.sx > 0 and np.isfinite(m.sy) else None
        half = None
        if value is not None and m.n > 1:
            half = z * float(np.sqrt(m.n / (m.n - 1) * m.residual_squares(m.ratio()))) / float(m.sx)
        metrics[metric] = MetricValue(
            value,
            None if half is None or value is None else value - half,
            None if half is None or value is None else value + half,
            int(m.events),
        )
    mine = rows & (columns.arm == k)
    latency = columns.latency_ms[mine]
    quantiles: tuple[float, ...] = ()
    if latency.size:
        quantiles = tuple(float(q) for q in np.percentile(latency, np.arange(101)))
        _, codes = np.unique(columns.unit[mine], return_inverse=True)
        value, variance = (
            quantile_estimate(latency, codes.reshape(-1), 0.95)
            if len(counts) > 1
            else (
                quantiles[95],
                np.nan,
            )
        )
        half = z * float(np.sqrt(variance)) if np.isfinite(variance) else None
        metrics["latency_p95_ms"] = MetricValue(
            value,
            None if half is None else value - half,
            None if half is None else value + half,
            int(latency.size),
        )
    else:
        metrics["latency_p95_ms"] = MetricValue(None, None, None, 0)
    coverage = tuple(
        CoverageCell(
            stratum=name,
            posts=int(totals[POSTS + s]) if len(counts) else 0,
            reviewed=int(totals[REVIEWED + s]) if len(counts) else 0,
            share=float(totals[REVIEWED + s] / totals[POSTS + s])
            if len(counts) and totals[POSTS + s]
            else None,
        )
        for s, name in enumerate(STRATA)
    )
    return ArmSummary(
        name=plan.name,
        shadow=plan.shadow,
        weight=plan.weight,
        units=len(counts),
        posts=int(totals[POSTS : POSTS + 3].sum()) if len(counts) else 0,
        reviewed=int(totals[REVIEWED : REVIEWED + 3].sum()) if len(counts) else 0,
        metrics=metrics,
        coverage=coverage,
        latency_quantiles_ms=quantiles,
    )


def srm_check(columns: Columns, arms: Sequence[ArmPlan], rows: Mask) -> SrmCheck | None:
    """Chi-square goodness of fit of the live arms' distinct units to their weights."""
    live = [(i, a) for i, a in enumerate(arms) if not a.shadow]
    observed = np.array(
        [len(np.unique(columns.unit[rows & (columns.arm == i)])) for i, _ in live],
        dtype=np.float64,
    )
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


def coverage_check(summaries: Sequence[ArmSummary]) -> CoverageCheck | None:
    """Per decision stratum, a chi-square of reviewed vs not across the arms that have it."""
    from scipy.stats import chi2_contingency

    p_values: dict[str, float] = {}
    for s, name in enumerate(STRATA):
        table = [
            [a.coverage[s].reviewed, a.coverage[s].posts - a.coverage[s].reviewed]
            for a in summaries
            if a.coverage[s].posts > 0
        ]
        if len(table) < 2 or sum(r[0] for r in table) == 0:
            continue
        if sum(r[1] for r in table) == 0:  # every item reviewed, in every arm
            p_values[name] = 1.0
            continue
        p_values[name] = float(chi2_contingency(np.array(table)).pvalue)
    if not p_values:
        return None
    alarm = any(p < COVERAGE_P_THRESHOLD for p in p_values.values())
    return CoverageCheck(p_values=p_values, alarm=alarm)
