"""The results of an A/B analysis: frozen dataclasses, the ``Verdict`` enum, JSON export.

``experiments.analysis.analyze`` builds an ``ExperimentAnalysis``; ``experiments.report`` and
``experiments.plots`` read one. Nothing here computes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, is_dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from modq.errors import ExperimentError

PROPORTION_METRICS = ("action_rate", "remove_rate", "precision", "recall")
METRICS = (*PROPORTION_METRICS, "latency_ms")
SRM_P_THRESHOLD = 0.001  # below this the split is broken: comparisons are not to be trusted


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
