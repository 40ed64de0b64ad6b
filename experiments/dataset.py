"""SQL in: an experiment's assignments joined with their review labels, ready for analysis."""

from __future__ import annotations

from sqlalchemy import Engine

from db.assignments import AssignmentRepository
from db.experiments import ExperimentRepository
from db.reviews import ReviewRepository
from experiments.analysis import ArmPlan, ExperimentAnalysis, Observation, analyze
from experiments.decision import DecisionRule
from modq.experiment import Experiment


def load_observations(engine: Engine, experiment: Experiment) -> list[Observation]:
    """Every assignment of ``experiment``, oldest first, with its overall review verdict
    (None where no reviewer has seen that content yet)."""
    assignments = AssignmentRepository(engine).for_experiment(experiment.id)
    labels = ReviewRepository(engine).labels_for({a.content_id for a in assignments})
    return [
        Observation(
            variant=a.variant,
            shadow=a.shadow,
            content_id=a.content_id,
            decision=a.decision,
            latency_ms=a.latency_ms,
            assigned_at=a.assigned_at,
            violation=labels.get(a.content_id),
            unit=a.unit,
        )
        for a in assignments
    ]


def arm_plans(experiment: Experiment) -> list[ArmPlan]:
    """The experiment's variants as the analysis sees them (the control first)."""
    live = [ArmPlan(v.name, v.weight, False) for v in experiment.live_variants]
    return live + [ArmPlan(v.name, 0.0, True) for v in experiment.shadow_variants]


def analyze_experiment(engine: Engine, experiment_id: str) -> ExperimentAnalysis:
    """Read an experiment and everything it produced; analyse it."""
    experiment = ExperimentRepository(engine).get(experiment_id)
    return analyze(
        load_observations(engine, experiment),
        arm_plans(experiment),
        alpha=experiment.alpha,
        planned_sample_size=experiment.planned_sample_size,
        experiment_id=experiment.id,
        rule=rule_of(experiment),
    )


def rule_of(experiment: Experiment) -> DecisionRule:
    """The experiment's declared decision rule (the default one if it declared none)."""
    if experiment.decision_rule is None:
        return DecisionRule()
    return DecisionRule.from_dict(experiment.decision_rule)
