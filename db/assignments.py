"""A/B assignments in SQL: which variant a unit got, and the result that variant produced."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Insert, func, select

from db.models import AssignmentRow
from db.session import as_utc, make_session_factory
from db.storage_errors import storage_errors


@dataclass(frozen=True, slots=True)
class Assignment:
    experiment_id: str
    variant: str
    shadow: bool
    unit: str  # the content_id or user_id the variant was chosen by
    content_id: str
    decision: str
    scores: dict[str, float]
    latency_ms: float
    model_name: str
    model_version: str
    policy_version: str
    cache_hit: bool
    assigned_at: datetime


_ASSIGNMENT_FIELDS = tuple(f.name for f in fields(Assignment))


def insert_assignments(insert: Callable[..., Any]) -> Insert:
    """An idempotent INSERT, to execute with a list of ``assignment_row`` dicts (a redelivered
    job records its assignment once)."""
    statement: Insert = insert(AssignmentRow.__table__).on_conflict_do_nothing(
        index_elements=["experiment_id", "content_id", "variant"]
    )
    return statement


def assignment_row(assignment: Assignment) -> dict[str, Any]:
    """The row of one assignment (column name -> value)."""
    return {name: getattr(assignment, name) for name in _ASSIGNMENT_FIELDS}


class AssignmentRepository:
    """Reads assignments for analysis (writes go with the results, see ``db.results``)."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = make_session_factory(engine)

    def for_experiment(self, experiment_id: str) -> list[Assignment]:
        """Every assignment of ``experiment_id``, oldest first."""
        query = (
            select(AssignmentRow)
            .where(AssignmentRow.experiment_id == experiment_id)
            .order_by(AssignmentRow.assigned_at, AssignmentRow.id)
        )
        with storage_errors("read assignments"), self._sessions() as session:
            return [_assignment(r) for r in session.scalars(query)]

    def counts(self, experiment_id: str) -> dict[str, int]:
        """Assignments per variant."""
        query = (
            select(AssignmentRow.variant, func.count())
            .where(AssignmentRow.experiment_id == experiment_id)
            .group_by(AssignmentRow.variant)
        )
        with storage_errors("count assignments"), self._sessions() as session:
            return {variant: int(n) for variant, n in session.execute(query).all()}


def _assignment(row: AssignmentRow) -> Assignment:
    return Assignment(
        experiment_id=row.experiment_id,
        variant=row.variant,
        shadow=row.shadow,
        unit=row.unit,
        content_id=row.content_id,
        decision=row.decision,
        scores=dict(row.scores),
        latency_ms=row.latency_ms,
        model_name=row.model_name,
        model_version=row.model_version,
        policy_version=row.policy_version,
        cache_hit=row.cache_hit,
        assigned_at=as_utc(row.assigned_at),
    )
