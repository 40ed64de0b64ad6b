"""Experiments in SQL (SQLite and PostgreSQL): their states, one running at a time, and the
assignments stored with results, once."""

from datetime import UTC, datetime

import pytest

from db.assignments import Assignment, AssignmentRepository
from db.experiments import ExperimentRepository
from db.results import ResultRepository
from db.session import make_engine
from modq.errors import ExperimentError, UnknownExperiment
from modq.experiment import AssignmentUnit, Experiment, ExperimentState, Variant


def _experiment(experiment_id: str = "exp-1") -> Experiment:
    return Experiment(
        id=experiment_id,
        variants=(
            Variant("control", "models:/m@production", "v1", 0.6),
            Variant("challenger", "models:/m/2", "v1", 0.4),
            Variant("quiet", "models:/m/3", "v1", shadow=True),
        ),
        unit=AssignmentUnit.USER_ID,
        planned_sample_size=500,
        created_by="tester",
        description="does v2 beat production?",
    )


def test_an_experiment_round_trips_and_moves_through_its_states(database_url: str) -> None:
    engine = make_engine(database_url)
    repository = ExperimentRepository(engine)
    created = repository.create(_experiment())
    loaded = repository.get("exp-1")
    assert loaded.variants == created.variants  # order kept: the first is the control
    assert (loaded.unit, loaded.planned_sample_size, loaded.state) == (
        AssignmentUnit.USER_ID,
        500,
        ExperimentState.DRAFT,
    )
    assert repository.running() is None
    started = repository.start("exp-1")
    assert started.state is ExperimentState.RUNNING and started.started_at is not None
    assert repository.running() == started
    stopped = repository.stop("exp-1", "challenger lost")
    assert stopped.state is ExperimentState.STOPPED and stopped.stop_reason == "challenger lost"
    assert repository.running() is None
    with pytest.raises(ExperimentError, match="only a draft can start"):
        repository.start("exp-1")
    with pytest.raises(ExperimentError, match="stopped already"):
        repository.stop("exp-1")
    engine.dispose()


def test_one_experiment_runs_at_a_time_and_ids_are_unique(database_url: str) -> None:
    engine = make_engine(database_url)
    repository = ExperimentRepository(engine)
    repository.create(_experiment("first"))
    repository.create(_experiment("second"))
    with pytest.raises(ExperimentError, match="exists already"):
        repository.create(_experiment("first"))
    repository.start("first")
    with pytest.raises(ExperimentError, match="'first' is running"):
        repository.start("second")
    with pytest.raises(UnknownExperiment):
        repository.get("nope")
    with pytest.raises(UnknownExperiment):
        repository.start("nope")
    assert [e.id for e in repository.all()] == ["first", "second"]
    engine.dispose()


def test_assignments_are_stored_once_even_when_a_job_is_redelivered(database_url: str) -> None:
    engine = make_engine(database_url)
    ExperimentRepository(engine).create(_experiment())
    now = datetime.now(UTC)
    assignments = [
        Assignment(
            "exp-1",
            "control",
            False,
            f"user:{i}",
            f"c-{i}",
            "allow",
            {"spam": 0.1},
            12.5,
            "m",
            "1",
            "v1",
            False,
            now,
        )
        for i in range(5)
    ]
    results = ResultRepository(engine)
    results.store_many([], assignments)
    results.store_many([], assignments[:3])  # the same jobs again
    stored = AssignmentRepository(engine).for_experiment("exp-1")
    assert [a.content_id for a in stored] == [f"c-{i}" for i in range(5)]
    assert stored[0] == assignments[0]
    assert AssignmentRepository(engine).counts("exp-1") == {"control": 5}
    engine.dispose()
