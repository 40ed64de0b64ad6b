"""A user's recent outcomes, read from SQL: what the policy's ``[user_history]`` rule uses.

Decisions come from ``moderation_results`` (by ``user_id``, since a moment); confirmed
violations are human reviews that found a violation in that user's content.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, and_, distinct, func, select
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from db.models import ModerationResultRow, ReviewOutcomeRow
from modq.errors import StorageUnavailable


@dataclass(frozen=True, slots=True)
class UserOutcomes:
    """Counts over one user's content decided since a moment."""

    decisions: int = 0
    flags: int = 0
    removals: int = 0
    confirmed_violations: int = 0


class UserHistoryRepository:
    """Reads one user's recent outcomes (two indexed queries)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def recent(self, user_id: str, since: datetime) -> UserOutcomes:
        """Decisions by kind and confirmed violations of ``user_id``'s content since ``since``."""
        results = ModerationResultRow
        by_decision = (
            select(results.decision, func.count(distinct(results.content_id)))
            .where(results.user_id == user_id, results.decided_at >= since)
            .group_by(results.decision)
        )
        violations = (
            select(func.count(distinct(ReviewOutcomeRow.content_id)))
            .select_from(ReviewOutcomeRow)
            .join(
                results,
                and_(results.content_id == ReviewOutcomeRow.content_id, results.user_id == user_id),
            )
            .where(ReviewOutcomeRow.violation.is_(True), results.decided_at >= since)
        )
        try:
            with self._engine.connect() as connection:
                counts = {str(d): int(n) for d, n in connection.execute(by_decision).all()}
                confirmed = int(connection.execute(violations).scalar_one())
        except OperationalError as exc:
            raise StorageUnavailable(f"database unavailable: {exc.orig}") from exc
        except SQLAlchemyError as exc:
            raise StorageUnavailable(f"could not read user history: {exc}") from exc
        return UserOutcomes(
            decisions=sum(counts.values()),
            flags=counts.get("flag", 0),
            removals=counts.get("remove", 0),
            confirmed_violations=confirmed,
        )
