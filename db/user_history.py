"""A user's recent outcomes, read from SQL: what the policy's ``[user_history]`` rule uses.

Decisions come from ``moderation_results`` (by ``user_id``, since a moment); confirmed
violations are human reviews that found a violation in that user's content.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, String, and_, distinct, func, literal, select, union_all

from db.models import ModerationResultRow, ReviewOutcomeRow
from db.storage_errors import storage_errors

CONFIRMED = "confirmed"  # the row kind of the confirmed-violations count


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
        """Decisions by kind and confirmed violations of ``user_id``'s content since ``since``
        (one round trip: the two counts in one UNION ALL)."""
        results = ModerationResultRow
        by_decision = (
            select(results.decision.label("kind"), func.count(distinct(results.content_id)))
            .where(results.user_id == user_id, results.decided_at >= since)
            .group_by(results.decision)
        )
        violations = (
            select(
                literal(CONFIRMED, String(16)).label("kind"),
                func.count(distinct(ReviewOutcomeRow.content_id)),
            )
            .select_from(ReviewOutcomeRow)
            .join(
                results,
                and_(results.content_id == ReviewOutcomeRow.content_id, results.user_id == user_id),
            )
            .where(ReviewOutcomeRow.violation.is_(True), results.decided_at >= since)
        )
        with storage_errors("read user history"), self._engine.connect() as connection:
            rows = connection.execute(union_all(by_decision, violations)).all()
        counts = {str(kind): int(n) for kind, n in rows}
        confirmed = counts.pop(CONFIRMED, 0)
        return UserOutcomes(
            decisions=sum(counts.values()),
            flags=counts.get("flag", 0),
            removals=counts.get("remove", 0),
            confirmed_violations=confirmed,
        )
