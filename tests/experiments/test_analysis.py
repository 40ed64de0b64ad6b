"""The A/B statistics on seeded simulations: planted effects are found, A/A tests are not
called significant more often than alpha, peeking is guarded, a skewed split trips SRM."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import binomtest

from experiments.analysis import (
    ArmPlan,
    Observation,
    Verdict,
    analyze,
    planned_sample_size_for,
    wilson_interval,
)
from modq.errors import ExperimentError
from tests.experiments import START, Arm, shadow_of, simulate

ALPHA = 0.05
ACTION_RATE = 0.3
# Units per arm to detect precision 0.60 -> 0.80: the z-test needs reviewed actioned items,
# and every actioned item is reviewed in the simulation, so divide by the action rate.
PRECISION_ITEMS = planned_sample_size_for(0.60, 0.20, alpha=ALPHA, power=0.8)
PLANNED_UNITS = math.ceil(PRECISION_ITEMS / ACTION_RATE)


def planted(seed: int, count: int) -> tuple[list[Observation], list[ArmPlan]]:
    arms = [Arm("a", count, precision=0.60), Arm("b", count, precision=0.80)]
    return simulate(np.random.default_rng(seed), arms)


def test_wilson_interval_matches_the_textbook() -> None:
    # Newcombe (1998), Stat Med 17:857, example 81/263: Wilson score interval 0.2553-0.3662
    low, high = wilson_interval(81, 263)
    assert low == pytest.approx(0.2553, abs=5e-5)
    assert high == pytest.approx(0.3662, abs=5e-5)
    scipy_ci = binomtest(81, 263).proportion_ci(0.95, method="wilson")
    assert (low, high) == pytest.approx((scipy_ci.low, scipy_ci.high), abs=1e-9)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0


def test_planned_sample_size_follows_the_two_proportion_formula() -> None:
    # (1.96·sqrt(2·0.7·0.3) + 0.8416·sqrt(0.24 + 0.16))² / 0.2² = 81.2 -> 82
    assert PRECISION_ITEMS == 82
    assert planned_sample_size_for(0.60, 0.10) > 4 * planned_sample_size_for(0.60, 0.20) * 0.9
    with pytest.raises(ExperimentError):
        planned_sample_size_for(0.95, 0.10)


def test_planted_precision_gain_is_significant_at_the_planned_size() -> None:
    observations, arms = planted(seed=7, count=PLANNED_UNITS)
    analysis = analyze(observations, arms, alpha=ALPHA, planned_sample_size=PLANNED_UNITS)
    precision = analysis.comparison("b", "precision")
    assert analysis.planned_sample_size_reached is True
    assert precision.test == "two-proportion z-test"
    assert precision.verdict is Verdict.SIGNIFICANT
    assert precision.difference is not None and precision.difference > 0.1
    assert analysis.verdict is Verdict.SIGNIFICANT
    assert "b vs a on precision" in analysis.verdict_text
    assert analysis.arm("b").precision.estimate > analysis.arm("a").precision.estimate  # type: ignore[operator]


def test_the_planned_size_gives_the_planned_power() -> None:
    runs = 60
    found = sum(
        analyze(*planted(seed, PLANNED_UNITS), planned_sample_size=PLANNED_UNITS)
        .comparison("b", "precision")
        .verdict
        is Verdict.SIGNIFICANT
        for seed in range(runs)
    )
    assert found / runs >= 0.65  # power 0.8 planned; binomial margin for 60 runs


def test_well_below_the_planned_size_it_says_keep_running_even_when_p_is_small() -> None:
    count = PLANNED_UNITS // 3
    for seed in range(100):
        analysis = analyze(*planted(seed, count), planned_sample_size=PLANNED_UNITS)
        precision = analysis.comparison("b", "precision")
        if precision.p_value is not None and precision.p_value < ALPHA:
            break
    else:
        pytest.fail("no seed gave p < alpha below the planned size")
    assert precision.verdict is Verdict.KEEP_RUNNING
    assert all(c.verdict is Verdict.KEEP_RUNNING for c in analysis.comparisons)
    assert analysis.verdict is Verdict.KEEP_RUNNING
    assert analysis.planned_sample_size_reached is False
    assert any("planned sample size not reached" in w for w in analysis.warnings)


def test_aa_tests_are_not_called_significant_more_often_than_alpha() -> None:
    """200 seeded A/A runs: the verdict, and the always-valid p over every look, stay near
    alpha; stopping at the first look where a naive z-test says p < alpha does not."""
    runs, count = 200, 600
    called = always_valid = naive_peeking = 0
    for seed in range(runs):
        arms = [Arm("a", count, precision=0.7), Arm("b", count, precision=0.7)]
        observations, plans = simulate(np.random.default_rng(10_000 + seed), arms)
        analysis = analyze(observations, plans, alpha=ALPHA, planned_sample_size=count)
        precision = analysis.comparison("b", "precision")
        assert len(precision.path.seen) > 50  # many looks
        called += analysis.verdict is Verdict.SIGNIFICANT
        always_valid += precision.always_valid_p_value < ALPHA  # type: ignore[operator]
        naive_peeking += min(precision.path.fixed_horizon) < ALPHA
    assert called / runs <= 0.08
    assert always_valid / runs <= 0.08
    assert naive_peeking / runs > 0.15  # why the guard matters: peeking inflates alpha


def test_without_a_plan_the_verdict_rests_on_the_always_valid_p() -> None:
    observations, arms = planted(seed=7, count=3 * PLANNED_UNITS)
    analysis = analyze(observations, arms)
    precision = analysis.comparison("b", "precision")
    assert precision.decided_on.startswith("always-valid")
    assert precision.always_valid_p_value is not None and precision.p_value is not None
    assert precision.always_valid_p_value >= precision.p_value  # the price of peeking freely
    assert precision.verdict is Verdict.SIGNIFICANT
    assert any("no planned sample size" in w for w in analysis.warnings)


def _split(seed: int, first: int, second: int) -> tuple[list[Observation], list[ArmPlan]]:
    arms = [Arm("a", first, action_rate=0.2), Arm("b", second, action_rate=0.3)]
    return simulate(np.random.default_rng(seed), arms)


def test_a_skewed_split_trips_the_srm_alarm_and_refuses_a_verdict() -> None:
    analysis = analyze(*_split(1, 5400, 4600), planned_sample_size=4000)
    assert analysis.srm is not None and analysis.srm.p_value < 0.001
    assert analysis.srm_alarm and analysis.srm.observed == (5400, 4600)
    assert analysis.verdict is Verdict.UNTRUSTED
    assert all(c.verdict is Verdict.UNTRUSTED for c in analysis.comparisons)
    assert "not to be trusted" in analysis.warnings[0]
    # the action rate differs for real (0.2 vs 0.3), yet nothing is called significant
    assert analysis.comparison("b", "action_rate").p_value < 1e-6  # type: ignore[operator]


def test_a_fair_split_does_not_trip_the_srm_alarm() -> None:
    analysis = analyze(*_split(1, 5030, 4970), planned_sample_size=4000)
    assert analysis.srm is not None and analysis.srm.p_value > 0.5
    assert not analysis.srm_alarm
    assert analysis.comparison("b", "action_rate").verdict is Verdict.SIGNIFICANT


def test_welch_detects_a_planted_latency_shift_of_20_ms() -> None:
    arms = [Arm("a", 300, latency_ms=50.0), Arm("b", 300, latency_ms=70.0)]
    observations, plans = simulate(np.random.default_rng(3), arms, latency_sd_ms=40.0)
    latency = analyze(observations, plans, planned_sample_size=300).comparison("b", "latency_ms")
    assert latency.test == "Welch t-test"
    assert latency.verdict is Verdict.SIGNIFICANT
    assert latency.difference == pytest.approx(20.0, abs=8.0)
    same = [Arm("a", 300), Arm("b", 300)]
    observations, plans = simulate(np.random.default_rng(3), same, latency_sd_ms=40.0)
    latency = analyze(observations, plans, planned_sample_size=300).comparison("b", "latency_ms")
    assert latency.verdict is Verdict.NOT_SIGNIFICANT


def test_a_shadow_that_flags_more_of_the_same_content_is_found_by_mcnemar() -> None:
    rng = np.random.default_rng(5)
    observations, arms = simulate(rng, [Arm("a", 800, weight=0.5), Arm("b", 800, weight=0.5)])
    shadow = shadow_of(rng, observations, "a", extra_action_rate=0.05)
    analysis = analyze(
        observations + shadow, [*arms, ArmPlan("shadow", 0.0, True)], planned_sample_size=800
    )
    action = analysis.comparison("shadow", "action_rate")
    assert action.test == "McNemar exact (paired)" and action.paired
    assert action.control_n == action.challenger_n == 800  # pairs: every control unit
    assert action.verdict is Verdict.SIGNIFICANT
    assert "0 only the control" in action.note
    assert analysis.comparison("shadow", "precision").test.endswith("(paired samples)")
    assert analysis.srm is not None and analysis.srm.arms == ("a", "b")  # shadows take no share
    twin = shadow_of(rng, observations, "a", extra_action_rate=0.0)
    same = analyze(observations + twin, [*arms, ArmPlan("shadow", 0.0, True)])
    assert same.comparison("shadow", "action_rate").p_value == 1.0


def test_to_dict_is_json_safe() -> None:
    rng = np.random.default_rng(2)
    observations, arms = simulate(rng, [Arm("a", 200), Arm("b", 200)])
    shadow = shadow_of(rng, observations, "a", extra_action_rate=0.1)
    analysis = analyze(observations + shadow, [*arms, ArmPlan("shadow", 0.0, True)])
    data = json.loads(json.dumps(analysis.to_dict(), allow_nan=False))
    assert data["arms"][0]["name"] == "a" and data["verdict"] == str(analysis.verdict)
    assert data["comparisons"][0]["path"]["at"][0].startswith("2025-03-01T")
    assert {c["metric"] for c in data["comparisons"]} == {
        "action_rate",
        "remove_rate",
        "precision",
        "recall",
        "latency_ms",
    }


def test_bad_input_is_an_experiment_error() -> None:
    stray = Observation("zz", False, "c1", "allow", 1.0, START, None)
    with pytest.raises(ExperimentError, match="unknown variant"):
        analyze([stray], [ArmPlan("a", 1.0, False)])
    with pytest.raises(ExperimentError, match="control"):
        analyze([], [ArmPlan("s", 0.0, True), ArmPlan("a", 1.0, False)])
    only = analyze([], [ArmPlan("a", 1.0, False)])
    assert only.verdict is Verdict.INSUFFICIENT and only.comparisons == ()
