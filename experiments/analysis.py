"""The statistics of an A/B experiment: observations in, an ``ExperimentAnalysis`` out. Pure.

- The unit of analysis is the unit of randomisation (``Observation.unit``: a user's posts
  count once, as one unit); every metric is a ratio over units with delta-method variance
  (``experiments.units``, ``experiments.inference``).
- Sample-ratio mismatch: chi-square of distinct units per live arm against the weights;
  below ``SRM_P_THRESHOLD`` the verdict is "untrusted".
- Review coverage: per arm and decision stratum, the share reviewed; a chi-square per
  stratum across arms raises the coverage alarm. Metrics that need labels weight each
  reviewed item by the inverse of its stratum's review share.
- With a planned size (units in the smallest live arm) the data are frozen when every live
  arm reaches it: later reports judge the same rows, once, at the fixed horizon. Without
  one the always-valid p and confidence sequence decide at any look.
- The decision rule (``experiments.decision``) gives each challenger ship / don't ship /
  keep running; Holm across challengers (shadows included) on the primary metric,
  Benjamini-Hochberg across secondary metrics.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from experiments.checks import coverage_check, srm_check, summarize_arm
from experiments.columns import Columns, Mask
from experiments.comparisons import MIXING_SD, Series, compare_all
from experiments.decision import (
    ChallengerVerdict,
    DecisionRule,
    Evidence,
    Mode,
    Verdict,
    judge,
    overall,
)
from experiments.inference import benjamini_hochberg, holm
from experiments.outcomes import (
    SRM_P_THRESHOLD,
    AlwaysValidPath,
    ArmPlan,
    ArmSummary,
    Comparison,
    CoverageCheck,
    ExperimentAnalysis,
    Observation,
    Role,
    SrmCheck,
)
from experiments.units import (
    METRICS,
)
from modq.errors import ExperimentError

__all__ = [
    "DEFAULT_LOOKS",
    "SRM_P_THRESHOLD",
    "ArmPlan",
    "DecisionRule",
    "ExperimentAnalysis",
    "Observation",
    "Verdict",
    "analyze",
]

DEFAULT_LOOKS = 50  # checkpoints of the always-valid path, evenly spread over the data


def analyze(
    observations: Sequence[Observation],
    arms: Sequence[ArmPlan],
    *,
    alpha: float = 0.05,
    planned_sample_size: int | None = None,
    experiment_id: str = "",
    rule: DecisionRule | None = None,
    looks: int = DEFAULT_LOOKS,
) -> ExperimentAnalysis:
    """Analyse an experiment; ``arms[0]`` is the control (a live arm), order is kept."""
    _check_arguments(arms, alpha, planned_sample_size, looks)
    rule = rule or DecisionRule()
    columns = Columns.build(observations, arms)
    cut = _freeze_row(columns, arms, planned_sample_size)
    reached = None if planned_sample_size is None else cut is not None
    rows = np.arange(len(columns)) <= (len(columns) - 1 if cut is None else cut)
    mode = Mode.SEQUENTIAL if reached is None else (Mode.FIXED if reached else Mode.WAITING)
    summaries = tuple(summarize_arm(columns, k, plan, rows, alpha) for k, plan in enumerate(arms))
    srm = srm_check(columns, arms, rows)
    coverage = coverage_check(summaries)
    srm_alarm = srm is not None and srm.alarm
    series = (
        compare_all(columns, arms, rows, alpha, looks) if len(columns) and len(arms) > 1 else []
    )
    comparisons, verdicts = _judge_all(series, arms, rule, mode, alpha)
    if not series:
        waiting = "no assignments yet: nothing to compare"
        verdicts = tuple(
            ChallengerVerdict(a.name, Verdict.KEEP_RUNNING, waiting, None) for a in arms[1:]
        )
    verdict, verdict_text = overall(verdicts, srm_alarm)
    if not len(columns):
        verdict_text = "no assignments yet: nothing to compare"
    return ExperimentAnalysis(
        experiment_id=experiment_id,
        alpha=alpha,
        rule=rule.to_dict(),
        mode=mode.value,
        planned_sample_size=planned_sample_size,
        planned_sample_size_reached=reached,
        frozen_at=columns.at[cut] if cut is not None else None,
        excluded_after_freeze=int((~rows).sum()),
        observations=len(columns),
        first_assigned_at=columns.at[0] if len(columns) else None,
        last_assigned_at=columns.at[-1] if len(columns) else None,
        arms=summaries,
        comparisons=comparisons,
        challengers=verdicts,
        srm=srm,
        srm_alarm=srm_alarm,
        coverage=coverage,
        warnings=_warnings(summaries, srm, coverage, mode, planned_sample_size, rows),
        verdict=verdict,
        verdict_text=verdict_text,
        mixing_sd=dict(MIXING_SD),
    )


def _check_arguments(
    arms: Sequence[ArmPlan], alpha: float, planned: int | None, looks: int
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
    if looks < 1:
        raise ExperimentError("at least one look")


def freeze_index(first_seen_arm: np.ndarray, live: Sequence[int], planned: int) -> int | None:
    """The position in arrival order (of units' first appearance) at which every live arm
    has ``planned`` units, or None if it has not happened."""
    cut = -1
    for k in live:
        positions = np.flatnonzero(first_seen_arm == k)
        if len(positions) < planned:
            return None
        cut = max(cut, int(positions[planned - 1]))
    return cut


def _freeze_row(columns: Columns, arms: Sequence[ArmPlan], planned: int | None) -> int | None:
    """The last row analysed when the plan is reached (None: no plan, or not reached)."""
    if planned is None or not len(columns):
        return None
    live = [k for k, a in enumerate(arms) if not a.shadow]
    pairs = columns.arm * (columns.units + 1) + columns.unit
    _, first = np.unique(pairs, return_index=True)
    first = np.sort(first)
    first = first[np.isin(columns.arm[first], live)]
    cut = freeze_index(columns.arm[first], live, planned)
    return None if cut is None else int(first[cut])


def _judge_all(
    series: Sequence[Series], arms: Sequence[ArmPlan], rule: DecisionRule, mode: Mode, alpha: float
) -> tuple[tuple[Comparison, ...], tuple[ChallengerVerdict, ...]]:
    """Comparisons with their roles and adjusted p-values; a verdict per challenger."""
    fixed = mode is Mode.FIXED

    def deciding(s: Series) -> float:
        p = float(s.fixed.p) if fixed else float(s.sequential.p[-1])
        return p if bool(s.last.valid) else 1.0

    def evidence(s: Series) -> Evidence:
        low = float(s.fixed.lift_low) if fixed else float(s.sequential.lift_low[-1])
        high = float(s.fixed.lift_high) if fixed else float(s.sequential.lift_high[-1])
        return Evidence(
            s.metric, bool(s.last.valid), float(s.last.difference), deciding(s), low, high
        )

    by_key = {(s.challenger, s.metric): s for s in series}
    challengers = sorted({s.challenger for s in series})
    primaries = [by_key[(k, rule.primary)] for k in challengers]
    adjusted = dict(zip(challengers, holm(np.array([deciding(s) for s in primaries])), strict=True))
    secondary = rule.secondary_metrics()
    rails = {g.metric: g for g in rule.guardrails}
    comparisons: list[Comparison] = []
    verdicts: list[ChallengerVerdict] = []
    for k in challengers:
        second = [by_key[(k, m)] for m in secondary if bool(by_key[(k, m)].last.valid)]
        bh = dict(
            zip(
                (s.metric for s in second),
                benjamini_hochberg(np.array([deciding(s) for s in second])),
                strict=True,
            )
        )
        for metric in METRICS:
            s = by_key[(k, metric)]
            role = (
                Role.PRIMARY
                if metric == rule.primary
                else (Role.GUARDRAIL if metric in rails else Role.SECONDARY)
            )
            adj = float(adjusted[k]) if role is Role.PRIMARY else bh.get(metric)
            if adj is not None:
                adj = float(adj)
            significant = bool(s.last.valid) and (adj if adj is not None else deciding(s)) < alpha
            comparisons.append(_comparison(s, arms, role, adj, significant, rails.get(metric)))
        verdicts.append(
            judge(
                rule,
                arms[k].name,
                evidence(primaries[challengers.index(k)]),
                float(adjusted[k]),
                {m: evidence(by_key[(k, m)]) for m in rails},
                mode,
                alpha,
            )
        )
    return tuple(comparisons), tuple(verdicts)


def _num(value: object) -> float | None:
    number = float(value)  # type: ignore[arg-type]
    return number if np.isfinite(number) else None


def _comparison(
    s: Series,
    arms: Sequence[ArmPlan],
    role: Role,
    adjusted: float | None,
    significant: bool,
    rail: object,
) -> Comparison:
    valid = bool(s.last.valid)
    note = "paired: the shadow scored the control's own units" if s.paired else ""
    if not valid:
        note = (
            note + "; " if note else ""
        ) + "too few units or events for the normal approximation"
    path_valid = s.valid
    return Comparison(
        control=arms[0].name,
        challenger=arms[s.challenger].name,
        metric=s.metric,
        role=role,
        paired=s.paired,
        valid=valid,
        control_value=_num(s.last.control),
        challenger_value=_num(s.last.challenger),
        difference=_num(s.last.difference),
        low=_num(s.fixed.low) if valid else None,
        high=_num(s.fixed.high) if valid else None,
        lift=_num(s.fixed.lift),
        lift_low=_num(s.fixed.lift_low) if valid else None,
        lift_high=_num(s.fixed.lift_high) if valid else None,
        p_value=float(s.fixed.p) if valid else None,
        always_valid_p_value=float(s.sequential.p[-1]),
        always_valid_low=_num(s.sequential.low[-1]),
        always_valid_high=_num(s.sequential.high[-1]),
        adjusted_p_value=adjusted,
        significant=significant,
        margin=getattr(rail, "margin", None),
        note=note,
        path=AlwaysValidPath(
            seen=tuple(int(x) for x in s.seen[path_valid]),
            at=(),
            always_valid=tuple(float(p) for p in s.sequential.p[path_valid]),
            fixed_horizon=tuple(float(p) for p in s.naive[path_valid]),
        ),
    )


def _warnings(
    arms: Sequence[ArmSummary],
    srm: SrmCheck | None,
    coverage: CoverageCheck | None,
    mode: Mode,
    planned: int | None,
    rows: Mask,
) -> tuple[str, ...]:
    warnings: list[str] = []
    if srm is not None and srm.alarm:
        counts = ", ".join(f"{n}={c}" for n, c in zip(srm.arms, srm.observed, strict=True))
        warnings.append(
            f"SAMPLE-RATIO MISMATCH (chi-square p = {srm.p_value:.2g} < {srm.threshold}; units "
            f"{counts}): the split is broken, comparisons are not to be trusted"
        )
    if coverage is not None and coverage.alarm:
        shares = "; ".join(
            f"{a.name}: "
            + ", ".join(f"{c.stratum} {c.share:.0%}" for c in a.coverage if c.share is not None)
            for a in arms
        )
        warnings.append(
            f"REVIEW COVERAGE DIFFERS BETWEEN ARMS ({shares}): labelled metrics are weighted by"
            " the inverse review share of each (arm, decision) stratum, which is unbiased only"
            " if reviews within a stratum are a random sample"
        )
    live = [a.units for a in arms if not a.shadow]
    if mode is Mode.WAITING:
        warnings.append(
            f"planned sample size not reached ({min(live)} of {planned} units in the smallest"
            " live arm): keep running, do not decide"
        )
    if mode is Mode.FIXED and (~rows).any():
        warnings.append(
            f"data frozen at the planned size: {int((~rows).sum())} later observations are not"
            " analysed (looking again cannot change the verdict)"
        )
    if mode is Mode.SEQUENTIAL:
        warnings.append("no planned sample size: verdicts rest on always-valid (mSPRT) p-values")
    if sum(a.reviewed for a in arms) == 0:
        warnings.append("no review labels yet: labelled metrics are unavailable")
    elif any(a.coverage[0].posts > 0 and a.coverage[0].reviewed == 0 for a in arms):
        warnings.append(
            "no audit sample of allowed content in some arm: recall is not estimable there"
            " (review a random share of allowed items)"
        )
    return tuple(warnings)
