"""The results of an A/B analysis: frozen dataclasses and their JSON export.

``experiments.analysis.analyze`` builds an ``ExperimentAnalysis``; ``experiments.report`` and
``experiments.plots`` read one. Nothing here computes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, is_dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from experiments.decision import ChallengerVerdict, Verdict
from modq.errors import ExperimentError

SRM_P_THRESHOLD = 0.001  # below this the split is broken: comparisons are not to be trusted
COVERAGE_P_THRESHOLD = 0.001  # below this review coverage differs between arms


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
    unit: str = ""  # what assignment was keyed on; "" means the content itself


@dataclass(frozen=True, slots=True)
class ArmPlan:
    name: str
    weight: float  # share of live traffic; 0 for shadow
    shadow: bool


@dataclass(frozen=True, slots=True)
class MetricValue:
    """One arm's metric with its (1 - alpha) delta-method interval over units."""

    value: float | None
    low: float | None
    high: float | None
    events: int  # unweighted events behind it (reviewed violations, actions, posts)


@dataclass(frozen=True, slots=True)
class CoverageCell:
    """Review coverage of one decision stratum in one arm."""

    stratum: str  # allow | flag | remove
    posts: int
    reviewed: int
    share: float | None


@dataclass(frozen=True, slots=True)
class ArmSummary:
    name: str
    shadow: bool
    weight: float
    units: int  # distinct randomisation units
    posts: int
    reviewed: int
    metrics: dict[str, MetricValue]
    coverage: tuple[CoverageCell, ...]
    latency_quantiles_ms: tuple[float, ...] = ()  # at 0, 1, ..., 100 %: for plots


@dataclass(frozen=True, slots=True)
class CoverageCheck:
    """Per stratum: does the reviewed share differ between arms (chi-square)?"""

    p_values: dict[str, float]
    alarm: bool
    threshold: float = COVERAGE_P_THRESHOLD


@dataclass(frozen=True, slots=True)
class AlwaysValidPath:
    """The p-values at each look, ``seen`` observations into the experiment (time order)."""

    seen: tuple[int, ...]
    at: tuple[datetime, ...]
    always_valid: tuple[float, ...]  # running minimum: valid however often one looks
    fixed_horizon: tuple[float, ...]  # what a naive test would say if one stopped there


class Role(StrEnum):
    PRIMARY = "primary"
    GUARDRAIL = "guardrail"
    SECONDARY = "secondary"


@dataclass(frozen=True, slots=True)
class Comparison:
    control: str
    challenger: str
    metric: str
    role: Role
    paired: bool  # a shadow: the same units scored by both
    valid: bool  # enough units and events in both arms
    control_value: float | None
    challenger_value: float | None
    difference: float | None  # challenger - control
    low: float | None  # (1 - alpha) interval for the difference, fixed horizon
    high: float | None
    lift: float | None  # difference / control
    lift_low: float | None
    lift_high: float | None
    p_value: float | None  # fixed horizon
    always_valid_p_value: float | None
    always_valid_low: float | None  # confidence sequence for the difference
    always_valid_high: float | None
    adjusted_p_value: float | None  # Holm (primary, across challengers) or BH (secondary)
    significant: bool  # on the deciding, adjusted p
    margin: float | None  # guardrails: the relative harm allowed
    note: str
    path: AlwaysValidPath


@dataclass(frozen=True, slots=True)
class SrmCheck:
    arms: tuple[str, ...]
    observed: tuple[int, ...]  # distinct units per live arm
    expected: tuple[float, ...]
    statistic: float
    p_value: float
    alarm: bool
    threshold: float = SRM_P_THRESHOLD


@dataclass(frozen=True, slots=True)
class ExperimentAnalysis:
    experiment_id: str
    alpha: float
    rule: dict[str, Any]  # the declared decision rule
    mode: str  # waiting / fixed horizon (frozen) / always-valid
    planned_sample_size: int | None  # units in the smallest live arm
    planned_sample_size_reached: bool | None  # None: nothing planned
    frozen_at: datetime | None
    excluded_after_freeze: int  # observations after the freeze, not analysed
    observations: int
    first_assigned_at: datetime | None
    last_assigned_at: datetime | None
    arms: tuple[ArmSummary, ...]
    comparisons: tuple[Comparison, ...]
    challengers: tuple[ChallengerVerdict, ...]
    srm: SrmCheck | None  # None with fewer than two live arms
    srm_alarm: bool
    coverage: CoverageCheck | None
    warnings: tuple[str, ...]  # most serious first
    verdict: Verdict
    verdict_text: str
    mixing_sd: dict[str, float]

    @property
    def primary_metric(self) -> str:
        return str(self.rule["primary"])

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

    def verdict_for(self, challenger: str) -> ChallengerVerdict:
        for verdict in self.challengers:
            if verdict.challenger == challenger:
                return verdict
        raise ExperimentError(f"no verdict for {challenger!r}", variant=challenger)

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
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value
