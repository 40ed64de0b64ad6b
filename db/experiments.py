"""Experiments in SQL: create, start, stop, read. One experiment runs at a time."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from db.models import ExperimentRow, ExperimentVariantRow
from db.session import as_utc, make_session_factory
from db.storage_errors import storage_errors
from modq.errors import ExperimentError, UnknownExperiment
from modq.experiment import AssignmentUnit, Experiment, ExperimentState, Variant


class ExperimentRepository:
    """The experiments table and its variants; state moves draft → running → stopped."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = make_session_factory(engine)

    @contextmanager
    def _session(self, action: str) -> Iterator[Session]:
        # a row the database refuses (an id taken, a name too long) is the caller's mistake
        with (
            storage_errors(action, refused=ExperimentError),
            self._sessions() as session,
            session.begin(),
        ):
            yield session

    def create(self, experiment: Experiment) -> Experiment:
        """Store a new draft; an id that exists already is an ``ExperimentError``."""
        if experiment.state is not ExperimentState.DRAFT:
            raise ExperimentError("a new experiment starts as a draft")
        created = replace(experiment, created_at=experiment.created_at or datetime.now(UTC))
        with self._session(f"create experiment {experiment.id!r}") as session:
            if session.get(ExperimentRow, experiment.id) is not None:
                raise ExperimentError(
                    f"experiment {experiment.id!r} exists already", experiment=experiment.id
                )
            session.add(_row(created))
            for position, variant in enumerate(created.variants):
                session.add(_variant_row(created.id, position, variant))
        return created

    def get(self, experiment_id: str) -> Experiment:
        with self._session(f"read experiment {experiment_id!r}") as session:
            row = session.get(ExperimentRow, experiment_id)
            if row is None:
                raise UnknownExperiment(
                    f"no experiment {experiment_id!r}", experiment=experiment_id
                )
            return _experiment(row, self._variants(session, experiment_id))

    def all(self) -> list[Experiment]:
        with self._session("list experiments") as session:
            rows = session.scalars(select(ExperimentRow).order_by(ExperimentRow.created_at))
            return [_experiment(r, self._variants(session, r.id)) for r in rows.all()]

    def running(self) -> Experiment | None:
        """The experiment that routes traffic now, if any."""
        with self._session("read the running experiment") as session:
            row = session.scalars(
                select(ExperimentRow).where(ExperimentRow.state == ExperimentState.RUNNING.value)
            ).first()
            return None if row is None else _experiment(row, self._variants(session, row.id))

    def start(self, experiment_id: str) -> Experiment:
        """draft → running; refused while another experiment runs (one routes at a time)."""
        with self._session(f"start experiment {experiment_id!r}") as session:
            row = self._locked(session, experiment_id)
            if row.state != ExperimentState.DRAFT.value:
                raise ExperimentError(
                    f"experiment {experiment_id!r} is {row.state}: only a draft can start "
                    "(a stopped experiment is never restarted; create a new one)",
                    experiment=experiment_id,
                )
            other = session.scalars(
                select(ExperimentRow.id).where(ExperimentRow.state == ExperimentState.RUNNING.value)
            ).first()
            if other is not None:
                raise ExperimentError(
                    f"experiment {other!r} is running: stop it before starting "
                    f"{experiment_id!r} (one experiment routes traffic at a time)",
                    experiment=experiment_id,
                    running=other,
                )
            row.state = ExperimentState.RUNNING.value
            row.started_at = datetime.now(UTC)
            return _experiment(row, self._variants(session, experiment_id))

    def stop(self, experiment_id: str, reason: str = "") -> Experiment:
        """running (or draft) → stopped; stopping a stopped experiment is an error."""
        with self._session(f"stop experiment {experiment_id!r}") as session:
            row = self._locked(session, experiment_id)
            if row.state == ExperimentState.STOPPED.value:
                raise ExperimentError(
                    f"experiment {experiment_id!r} is stopped already", experiment=experiment_id
                )
            row.state = ExperimentState.STOPPED.value
            row.stopped_at = datetime.now(UTC)
            row.stop_reason = reason
            return _experiment(row, self._variants(session, experiment_id))

    def record_forced_promotion(self, experiment_id: str, note: str) -> Experiment:
        """Keep why a variant was promoted without a "ship" verdict (who, what, why)."""
        with self._session(f"record a forced promotion of {experiment_id!r}") as session:
            row = self._locked(session, experiment_id)
            row.forced_promotion = note
            return _experiment(row, self._variants(session, experiment_id))

    @staticmethod
    def _locked(session: Session, experiment_id: str) -> ExperimentRow:
        row = session.scalars(
            select(ExperimentRow).where(ExperimentRow.id == experiment_id).with_for_update()
        ).first()
        if row is None:
            raise UnknownExperiment(f"no experiment {experiment_id!r}", experiment=experiment_id)
        return row

    @staticmethod
    def _variants(session: Session, experiment_id: str) -> Sequence[ExperimentVariantRow]:
        return session.scalars(
            select(ExperimentVariantRow)
            .where(ExperimentVariantRow.experiment_id == experiment_id)
            .order_by(ExperimentVariantRow.position)
        ).all()


def _row(experiment: Experiment) -> ExperimentRow:
    return ExperimentRow(
        id=experiment.id,
        description=experiment.description,
        unit=experiment.unit.value,
        state=experiment.state.value,
        planned_sample_size=experiment.planned_sample_size,
        alpha=experiment.alpha,
        created_by=experiment.created_by,
        created_at=experiment.created_at,
        started_at=experiment.started_at,
        stopped_at=experiment.stopped_at,
        stop_reason=experiment.stop_reason,
        decision_rule=None if experiment.decision_rule is None else dict(experiment.decision_rule),
        forced_promotion=experiment.forced_promotion,
    )


def _variant_row(experiment_id: str, position: int, variant: Variant) -> ExperimentVariantRow:
    return ExperimentVariantRow(
        experiment_id=experiment_id,
        name=variant.name,
        position=position,
        model_uri=variant.model_uri,
        policy_version=variant.policy_version,
        weight=variant.weight,
        shadow=variant.shadow,
    )


def _experiment(row: ExperimentRow, variants: Sequence[ExperimentVariantRow]) -> Experiment:
    return Experiment(
        id=row.id,
        variants=tuple(
            Variant(v.name, v.model_uri, v.policy_version, v.weight, v.shadow) for v in variants
        ),
        unit=AssignmentUnit(row.unit),
        state=ExperimentState(row.state),
        description=row.description,
        planned_sample_size=row.planned_sample_size,
        alpha=row.alpha,
        created_by=row.created_by,
        created_at=as_utc(row.created_at),
        started_at=as_utc(row.started_at),
        stopped_at=as_utc(row.stopped_at),
        stop_reason=row.stop_reason,
        decision_rule=row.decision_rule,
        forced_promotion=row.forced_promotion,
    )
