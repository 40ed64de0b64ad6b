"""The analysis end to end on seeded observations: units, freezing, the verdict and its reason,
intervals, paired shadows, the arithmetic against scipy."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pytest
from scipy.stats import norm

from experiments.analysis import ArmPlan, Observation, analyze, freeze_index
from experiments.decision import DecisionRule, Verdict
from experiments.inference import Moments, compare, fixed_horizon, holm
from experiments.outcomes import Role
from experiments.units import MetricColumns
from modq.errors import ExperimentError
from tests.experiments import START, Arm, shadow_of, simulate

PRECISION_UP = DecisionRule.of("precision", guardrails=())


def planted(seed: int, count: int) -> tuple[list[Observation], list[ArmPlan]]:
    arms = [Arm("a", count, precision=0.60), Arm("b", count, precision=0.80)]
    return simulate(np.random.default_rng(seed), arms)


def test_on_independent_binary_units_the_test_is_the_pooled_z_test() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.random(4000) < 0.30, rng.random(3000) < 0.33
    moments = [
        Moments.of(
            MetricColumns(y.astype(float), np.ones(y.size), y.astype(float), np.ones(y.size)),
            np.ones(y.size, dtype=bool),
        )
        for y in (a, b)
    ]
    result = fixed_horizon(compare(*moments), 0.05)
    pooled = (a.sum() + b.sum()) / (a.size + b.size)
    se = np.sqrt(pooled * (1 - pooled) * (1 / a.size + 1 / b.size))
    own = np.sqrt(
        a.mean() * (1 - a.mean()) / (a.size - 1) + b.mean() * (1 - b.mean()) / (b.size - 1)
    )
    z = (b.mean() - a.mean()) / max(se, own)
    assert float(result.p) == pytest.approx(2 * norm.sf(abs(z)), rel=1e-9)
    # the lift's interval: delta method for p_b / p_a (textbook, without the n/(n-1))
    pa, pb = a.mean(), b.mean()
    lift_se = np.sqrt(pb * (1 - pb) / b.size / pa**2 + pb**2 * (1 - pa) / (a.size * pa**3))
    half = float(result.lift_high - result.lift_low) / 2
    assert half == pytest.approx(1.959964 * lift_se, rel=0.02)


def test_holm_matches_the_step_down_definition() -> None:
    adjusted = holm(np.array([0.01, 0.04, 0.03]))
    assert adjusted == pytest.approx([0.03, 0.06, 0.06])


def test_a_planted_precision_gain_ships_at_the_planned_size_and_freezes() -> None:
    observations, arms = planted(seed=7, count=700)
    analysis = analyze(observations, arms, planned_sample_size=500, rule=PRECISION_UP)
    assert analysis.planned_sample_size_reached is True
    assert analysis.excluded_after_freeze > 0 and analysis.frozen_at is not None
    assert analysis.arm("a").units >= 500 and analysis.arm("b").units >= 500
    assert min(analysis.arm("a").units, analysis.arm("b").units) == 500
    precision = analysis.comparison("b", "precision")
    assert precision.role is Role.PRIMARY and precision.significant
    assert precision.low is not None and precision.low > 0.05  # interval for the difference
    assert precision.lift_low is not None and precision.lift_low > 0.1  # and for the lift
    assert analysis.verdict is Verdict.SHIP
    assert analysis.verdict_for("b").reason.startswith("precision better")
    json.dumps(analysis.to_dict())  # JSON-safe


def test_reports_after_the_plan_judge_the_same_frozen_rows() -> None:
    """Issue 14, case 4: reports re-run after the plan used the growing data (A/A up to
    0.151 by 2x the plan); now the rows are frozen when the plan is reached."""
    observations, arms = planted(seed=11, count=1200)
    ordered = sorted(observations, key=lambda o: o.assigned_at)
    at_plan = analyze(ordered[:1300], arms, planned_sample_size=600, rule=PRECISION_UP)
    twice = analyze(ordered, arms, planned_sample_size=600, rule=PRECISION_UP)
    first, second = at_plan.comparison("b", "precision"), twice.comparison("b", "precision")
    assert first.p_value == second.p_value and first.difference == second.difference
    assert at_plan.frozen_at == twice.frozen_at
    assert twice.excluded_after_freeze > at_plan.excluded_after_freeze


def test_before_the_plan_it_keeps_running_even_when_p_is_small() -> None:
    observations, arms = planted(seed=7, count=400)
    analysis = analyze(observations, arms, planned_sample_size=1000, rule=PRECISION_UP)
    assert analysis.comparison("b", "precision").p_value < 0.001  # type: ignore[operator]
    assert analysis.verdict is Verdict.KEEP_RUNNING
    assert any("planned sample size not reached" in w for w in analysis.warnings)


def test_without_a_plan_the_always_valid_p_decides() -> None:
    observations, arms = planted(seed=7, count=1500)
    analysis = analyze(observations, arms, rule=PRECISION_UP)
    precision = analysis.comparison("b", "precision")
    assert precision.always_valid_p_value >= precision.p_value  # type: ignore[operator]
    assert precision.always_valid_low is not None and precision.always_valid_low > 0
    assert precision.low is not None and precision.always_valid_low < precision.low  # wider
    assert analysis.verdict is Verdict.SHIP
    assert any("no planned sample size" in w for w in analysis.warnings)


def test_a_shadow_is_compared_on_its_paired_units() -> None:
    rng = np.random.default_rng(5)
    observations, arms = simulate(rng, [Arm("a", 2000), Arm("b", 2000)])
    observations += shadow_of(rng, observations, "a", extra_action_rate=0.1)
    arms.append(ArmPlan("shadow", 0.0, True))
    rule = DecisionRule.of("action_rate", "increase", guardrails=())
    analysis = analyze(observations, arms, rule=rule)
    action = analysis.comparison("shadow", "action_rate")
    assert action.paired and action.significant and action.difference > 0.05  # type: ignore[operator]
    assert analysis.arm("shadow").units == analysis.arm("a").units
    assert analysis.srm is not None and analysis.srm.arms == ("a", "b")  # shadows not in SRM


def test_bad_arguments_are_refused() -> None:
    observations, arms = planted(seed=1, count=10)
    with pytest.raises(ExperimentError):
        analyze(observations, [ArmPlan("s", 0.0, True), *arms])
    with pytest.raises(ExperimentError):
        analyze(observations, arms, alpha=1.5)
    with pytest.raises(ExperimentError):
        DecisionRule.of("nonsense")
    with pytest.raises(ExperimentError, match="direction"):
        DecisionRule.of("action_rate")  # no natural direction: it must be declared
    stray = Observation("zzz", False, "x", "allow", 1.0, START, None)
    with pytest.raises(ExperimentError):
        analyze([stray], arms)


def test_no_traffic_keeps_running() -> None:
    analysis = analyze([], [ArmPlan("a", 0.5, False), ArmPlan("b", 0.5, False)])
    assert analysis.verdict is Verdict.KEEP_RUNNING
    assert analysis.verdict_text.startswith("no assignments yet")


def test_freeze_index_waits_for_every_live_arm() -> None:
    arrivals = np.array([0, 0, 1, 0, 1, 1, 0])
    assert freeze_index(arrivals, [0, 1], 2) == 4
    assert freeze_index(arrivals, [0, 1], 4) is None


def test_latency_p95_uses_units() -> None:
    rng = np.random.default_rng(9)
    observations, arms = simulate(
        rng, [Arm("a", 1500, latency_ms=50), Arm("b", 1500, latency_ms=80)]
    )
    late = [
        Observation(
            o.variant,
            o.shadow,
            o.content_id,
            o.decision,
            o.latency_ms,
            o.assigned_at + timedelta(0),
            o.violation,
        )
        for o in observations
    ]
    analysis = analyze(late, arms, rule=DecisionRule.of("precision", guardrails=()))
    p95 = analysis.comparison("b", "latency_p95_ms")
    assert p95.valid and p95.difference is not None and 20 < p95.difference < 40
    assert p95.low is not None and p95.high is not None and p95.low < p95.difference < p95.high
