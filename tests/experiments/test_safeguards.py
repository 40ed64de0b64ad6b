"""Each way issue 14 found to fool the verdict, as a test through ``analyze`` (the A/A rates
per design are in test_calibration.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import numpy as np

from experiments.analysis import ArmPlan, Observation, analyze
from experiments.decision import DecisionRule, Verdict
from experiments.planner import PlanInputs, plan, power_at
from tests.experiments import START, Arm, by_user, simulate


def _rows(
    variant: str, decisions: list[str], labels: list[bool | None], start: int = 0
) -> list[Observation]:
    return [
        Observation(
            variant, False, f"{variant}-{k}", d, 50.0, START + timedelta(seconds=start + 2 * k), v
        )
        for k, (d, v) in enumerate(zip(decisions, labels, strict=True))
    ]


def test_a_small_arm_with_no_removals_is_not_called_certain() -> None:
    """Case 1: control removes 90 of 1,000, the challenger 0 of 30. The old always-valid p was
    5.5e-21 (the small arm's own variance is 0); Fisher's exact p is 0.10."""
    control = _rows("a", ["remove"] * 90 + ["allow"] * 910, [None] * 1000)
    challenger = _rows("b", ["allow"] * 30, [None] * 30, start=1)
    arms = [ArmPlan("a", 0.9, False), ArmPlan("b", 0.1, False)]
    rule = DecisionRule.of("remove_rate", "decrease", guardrails=())
    analysis = analyze(control + challenger, arms, rule=rule)
    remove = analysis.comparison("b", "remove_rate")
    assert remove.always_valid_p_value is not None and remove.always_valid_p_value >= 0.05
    assert not remove.valid and not remove.significant  # 0 events: below the minimum count
    assert analysis.verdict is not Verdict.SHIP and analysis.verdict is not Verdict.DONT_SHIP


def test_srm_counts_users_not_posts() -> None:
    """Case 2: by user, the split holds in users while heavy posters make posts lopsided. The
    old check counted posts and fired (then every verdict read "untrusted")."""
    observations, arms = by_user(np.random.default_rng(2), [Arm("a", 150), Arm("b", 150)])
    heavy = [
        replace(
            o, content_id=f"{o.content_id}-again", assigned_at=o.assigned_at + timedelta(hours=1)
        )
        for o in observations
        if o.variant == "b"
    ]
    analysis = analyze(observations + heavy, arms, rule=DecisionRule.of("precision"))
    assert analysis.srm is not None and analysis.srm.observed == (150, 150)
    assert not analysis.srm_alarm and analysis.verdict is not Verdict.UNTRUSTED
    posts = (analysis.arm("a").posts, analysis.arm("b").posts)
    assert posts[1] > 1.8 * posts[0]  # what the old check saw: p far below 0.001


def test_user_level_intervals_account_for_the_user_effect() -> None:
    """Case 3: posts of one user are alike (ICC 0.16); analysed per post, the interval is too
    narrow (A/A false positives 0.146 on precision, 0.256 on action rate)."""
    observations, arms = by_user(np.random.default_rng(3), [Arm("a", 200), Arm("b", 200)])
    per_user = analyze(observations, arms, rule=DecisionRule.of("precision"))
    per_post = analyze(
        [replace(o, unit="") for o in observations], arms, rule=DecisionRule.of("precision")
    )
    for metric in ("precision", "action_rate"):
        user, post = per_user.comparison("b", metric), per_post.comparison("b", metric)
        assert user.low is not None and user.high is not None
        assert post.low is not None and post.high is not None
        assert (user.high - user.low) > 1.4 * (post.high - post.low), metric
    assert per_user.arm("a").units == 200 and per_post.arm("a").units > 1500


def test_a_fall_in_precision_is_dont_ship_not_significant() -> None:
    """Case 5: precision 0.70 -> 0.60 was reported as "significant"."""
    rng = np.random.default_rng(5)
    observations, arms = simulate(
        rng, [Arm("a", 3000, precision=0.7), Arm("b", 3000, precision=0.6)]
    )
    analysis = analyze(
        observations, arms, planned_sample_size=2500, rule=DecisionRule.of("precision")
    )
    assert analysis.comparison("b", "precision").significant
    assert analysis.verdict is Verdict.DONT_SHIP
    assert "significantly worse" in analysis.verdict_for("b").reason


def test_holm_counts_every_challenger_shadows_included() -> None:
    """Case 6: three identical challengers gave 0.118 false positives; shadows count too."""
    rng = np.random.default_rng(6)
    observations, arms = simulate(rng, [Arm("a", 1500, weight=0.5), Arm("b", 1500, weight=0.5)])
    shadow = [
        replace(o, variant="s", shadow=True, assigned_at=o.assigned_at + timedelta(milliseconds=1))
        for o in observations
        if o.variant == "a"
    ]
    analysis = analyze(
        observations + shadow, [*arms, ArmPlan("s", 0.0, True)], planned_sample_size=1000
    )
    primary = analysis.primary_metric
    live, copy = analysis.comparison("b", primary), analysis.comparison("s", primary)
    assert live.p_value is not None and live.adjusted_p_value is not None
    assert live.adjusted_p_value >= live.p_value  # family of two: never below the raw p
    assert {v.challenger for v in analysis.challengers} == {"b", "s"}
    assert copy.adjusted_p_value is not None


def _threshold_experiment(rng: np.random.Generator, posts: int) -> list[Observation]:
    """One model, two thresholds: each post has a violation probability (its score); the
    control actions the top 20%, the challenger only the top 12% (stricter)."""
    rows = []
    for k in range(posts):
        arm = "a" if k % 2 == 0 else "b"
        score = rng.beta(1.2, 6.0)
        actioned = score > _SCORE_AT[0.2 if arm == "a" else 0.12]
        violation = bool(rng.random() < score)
        reviewed = actioned or rng.random() < 0.2
        decision = "remove" if actioned and score > 0.6 else ("flag" if actioned else "allow")
        rows.append(
            Observation(
                arm,
                False,
                f"c{k}",
                decision,
                50.0,
                START + timedelta(seconds=k),
                violation if reviewed else None,
            )
        )
    return rows


_SCORES = np.random.default_rng(0).beta(1.2, 6.0, 200_000)
_SCORE_AT = {share: float(np.quantile(_SCORES, 1 - share)) for share in (0.2, 0.12)}


def test_a_stricter_threshold_does_not_win_by_default() -> None:
    """Case 7a: a stricter threshold on the same model "won" on precision while violations
    actioned per 1,000 posts fell. The default rule's primary is violations actioned."""
    observations = _threshold_experiment(np.random.default_rng(7), 16_000)
    arms = [ArmPlan("a", 0.5, False), ArmPlan("b", 0.5, False)]
    default = analyze(observations, arms, planned_sample_size=7000)
    precision = default.comparison("b", "precision")
    assert precision.difference is not None and precision.difference > 0.05  # looks better
    caught = default.comparison("b", "violations_actioned_per_1k")
    assert caught.difference is not None and caught.difference < 0 and caught.significant
    assert default.verdict is Verdict.DONT_SHIP
    assert default.rule["primary"] == "violations_actioned_per_1k"


def test_unequal_review_coverage_is_weighted_and_alarmed() -> None:
    """Case 7b: all flags but only 10% of removals reviewed in one arm; equal true precision
    read 0.619 vs 0.492, significant in 500 of 500 runs."""
    rng = np.random.default_rng(8)
    rows = []
    for k in range(12_000):
        arm = "a" if k % 2 == 0 else "b"
        actioned = rng.random() < 0.3
        remove = actioned and rng.random() < 0.4
        violation = (
            bool(rng.random() < (0.9 if remove else 0.4)) if actioned else bool(rng.random() < 0.05)
        )
        decision = "remove" if remove else ("flag" if actioned else "allow")
        seen = (
            (rng.random() < 0.1)
            if decision == "allow"
            else (arm == "a" or not remove or rng.random() < 0.1)
        )
        rows.append(
            Observation(
                arm,
                False,
                f"c{k}",
                decision,
                50.0,
                START + timedelta(seconds=k),
                violation if seen else None,
            )
        )
    arms = [ArmPlan("a", 0.5, False), ArmPlan("b", 0.5, False)]
    analysis = analyze(rows, arms, planned_sample_size=5000, rule=DecisionRule.of("precision"))
    assert analysis.coverage is not None and analysis.coverage.alarm
    assert any("REVIEW COVERAGE" in w for w in analysis.warnings)
    precision = analysis.comparison("b", "precision")
    assert precision.difference is not None and abs(precision.difference) < 0.04  # unbiased
    assert not precision.significant and analysis.verdict is not Verdict.SHIP
    naive_b = [
        o for o in rows if o.variant == "b" and o.decision != "allow" and o.violation is not None
    ]
    naive = np.mean([o.violation for o in naive_b])
    assert naive < 0.55  # what the unweighted precision read (true: 0.6)


def test_the_planner_takes_each_arms_action_rate_icc_and_challengers() -> None:
    """Case 8: the old planner assumed equal action rates (power 0.676 at a challenger
    acting on 0.12 instead of 0.2), counted assignments, ignored clustering."""
    same = PlanInputs("precision", (0.6, 0.7), (0.2, 0.2), (0.5, 0.5), review_share=0.5)
    fewer = replace(same, action_rates=(0.2, 0.12))
    assert plan(fewer).units_total > 1.2 * plan(same).units_total
    assert power_at(fewer, plan(same).units_total) < 0.72
    assert abs(power_at(fewer, plan(fewer).units_total) - 0.8) < 0.01
    clustered = replace(same, min_posts=1, max_posts=20, icc=0.16)
    assert plan(clustered).design_effect[0] > 1.25
    assert plan(clustered).units_total > 1.25 * plan(same).units_total / 10.5  # per user
    three = replace(same, values=(0.6, 0.7, 0.7, 0.7), action_rates=(0.2,) * 4, weights=(0.25,) * 4)
    assert plan(three).alpha_per_test == 0.05 / 3
    assert plan(same).reviewed_items_per_arm[0] == plan(same).units_per_arm[0] * 0.2 * 0.5
