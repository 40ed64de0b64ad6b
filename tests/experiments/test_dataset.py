"""From SQL (SQLite and PostgreSQL) to a verdict: the declared rule and the forced-promotion
note round-trip (migration 0004), and assignments by user are analysed per user."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from db.experiments import ExperimentRepository
from db.models import AssignmentRow
from db.session import make_engine
from experiments.dataset import analyze_experiment
from experiments.decision import DecisionRule, Guardrail, Verdict
from modq.experiment import AssignmentUnit, Experiment, Variant
from tests.experiments import START

RULE = DecisionRule.of("action_rate", "decrease", [Guardrail.of("latency_ms", 0.5)])


def test_rule_and_forced_promotion_round_trip_and_users_are_units(database_url: str) -> None:
    engine = make_engine(database_url)
    repository = ExperimentRepository(engine)
    experiment = Experiment(
        id="by-user",
        variants=(
            Variant("control", "models:/m@production", "v1", 0.5),
            Variant("challenger", "models:/m/2", "v1", 0.5),
        ),
        unit=AssignmentUnit.USER_ID,
        decision_rule=RULE.to_dict(),
    )
    repository.create(experiment)
    with Session(engine) as session, session.begin():
        for user in range(60):
            variant = "control" if user % 2 == 0 else "challenger"
            for post in range(1 + (user % 2) * 4):  # challenger users post 5 times as often
                session.add(
                    AssignmentRow(
                        experiment_id="by-user",
                        variant=variant,
                        shadow=False,
                        unit=f"user:u{user}",
                        content_id=f"u{user}-p{post}",
                        decision="flag" if post == 0 and user % 3 == 0 else "allow",
                        scores={},
                        latency_ms=50.0 + post,
                        model_name="m",
                        model_version="1",
                        policy_version="v1",
                        cache_hit=False,
                        assigned_at=START + timedelta(seconds=10 * user + post),
                    )
                )
    analysis = analyze_experiment(engine, "by-user")
    assert analysis.rule == RULE.to_dict()
    assert analysis.srm is not None and analysis.srm.observed == (30, 30)
    assert not analysis.srm_alarm  # 30 vs 150 posts would have fired
    assert (analysis.arm("control").posts, analysis.arm("challenger").posts) == (30, 150)
    assert analysis.verdict is Verdict.KEEP_RUNNING  # no plan, too few events to decide
    stored = repository.record_forced_promotion("by-user", "tester: forced for a reason")
    assert repository.get("by-user").forced_promotion == "tester: forced for a reason"
    assert stored.decision_rule == RULE.to_dict()
    engine.dispose()
