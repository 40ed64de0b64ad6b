"""Review outcomes in SQL: ground truth from human review, one label per (content, category)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, select, tuple_, union
from sqlalchemy.exc import SQLAlchemyError

from db.models import AssignmentRow, ModerationResultRow, ReviewOutcomeRow
from db.session import make_session_factory
from modq.errors import StorageUnavailable

OVERALL = "any"  # the category of an overall violation / safe verdict
CHUNK = 500  # ids per IN (...) query


@dataclass(frozen=True, slots=True)
class ReviewOutcome:
    content_id: str
    category: str  # a canonical category, or "any"
    violation: bool
    source: str
    reviewer: str | None = None
    reviewed_at: datetime | None = None


@dataclass(slots=True)
class RecordCounts:
    new: int = 0
    unchanged: int = 0  # the same label was there already: a re-import changes nothing
    changed: int = 0  # a reviewer corrected a label: the latest wins

    def add(self, other: RecordCounts) -> None:
        self.new += other.new
        self.unchanged += other.unchanged
        self.changed += other.changed


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


class ReviewRepository:
    def __init__(self, engine: Engine) -> None:
        self._sessions = make_session_factory(engine)

    def known_content_ids(self, content_ids: Iterable[str]) -> set[str]:
        """The ids modq has decided (a result or an A/B assignment), read in chunks."""
        wanted = sorted(set(content_ids))
        known: set[str] = set()
        try:
            with self._sessions() as session:
                for chunk in _chunks(wanted):
                    query = union(
                        select(ModerationResultRow.content_id).where(
                            ModerationResultRow.content_id.in_(chunk)
                        ),
                        select(AssignmentRow.content_id).where(AssignmentRow.content_id.in_(chunk)),
                    )
                    known.update(session.scalars(select(query.subquery().c[0])).all())
        except SQLAlchemyError as exc:
            raise StorageUnavailable(f"cannot read known content ids: {exc}") from exc
        return known

    def record(self, outcomes: Sequence[ReviewOutcome]) -> RecordCounts:
        """Store outcomes in one transaction: new labels inserted, corrected ones updated,
        repeated ones left alone (idempotent). Within ``outcomes`` the last label wins."""
        latest = {(o.content_id, o.category): o for o in outcomes}
        counts = RecordCounts()
        if not latest:
            return counts
        keys = list(latest)
        now = datetime.now(UTC)
        try:
            with self._sessions.begin() as session:
                existing: dict[tuple[str, str], ReviewOutcomeRow] = {}
                for start in range(0, len(keys), CHUNK):
                    chunk = keys[start : start + CHUNK]
                    rows = session.scalars(
                        select(ReviewOutcomeRow).where(
                            tuple_(ReviewOutcomeRow.content_id, ReviewOutcomeRow.category).in_(
                                chunk
                            )
                        )
                    )
                    existing.update({(r.content_id, r.category): r for r in rows})
                for key, outcome in latest.items():
                    row = existing.get(key)
                    if row is None:
                        session.add(_row(outcome, now))
                        counts.new += 1
                    elif row.violation == outcome.violation:
                        counts.unchanged += 1
                    else:
                        row.violation = outcome.violation
                        row.source, row.reviewer = outcome.source, outcome.reviewer
                        row.reviewed_at, row.recorded_at = outcome.reviewed_at, now
                        counts.changed += 1
        except SQLAlchemyError as exc:
            raise StorageUnavailable(f"cannot store review outcomes: {exc}") from exc
        return counts

    def labels_for(self, content_ids: Iterable[str]) -> dict[str, bool]:
        """The overall verdict per content id: its ``any`` label if it has one, else True if
        any category was labelled a violation, else False; ids without labels are absent."""
        wanted = sorted(set(content_ids))
        by_id: dict[str, dict[str, bool]] = {}
        try:
            with self._sessions() as session:
                for chunk in _chunks(wanted):
                    rows = session.execute(
                        select(
                            ReviewOutcomeRow.content_id,
                            ReviewOutcomeRow.category,
                            ReviewOutcomeRow.violation,
                        ).where(ReviewOutcomeRow.content_id.in_(chunk))
                    )
                    for content_id, category, violation in rows:
                        by_id.setdefault(content_id, {})[category] = bool(violation)
        except SQLAlchemyError as exc:
            raise StorageUnavailable(f"cannot read review outcomes: {exc}") from exc
        return {
            content_id: labels[OVERALL] if OVERALL in labels else any(labels.values())
            for content_id, labels in by_id.items()
        }

    def outcomes(self, content_id: str) -> list[ReviewOutcome]:
        with self._sessions() as session:
            rows = session.scalars(
                select(ReviewOutcomeRow)
                .where(ReviewOutcomeRow.content_id == content_id)
                .order_by(ReviewOutcomeRow.category)
            )
            return [
                ReviewOutcome(
                    r.content_id, r.category, r.violation, r.source, r.reviewer, r.reviewed_at
                )
                for r in rows
            ]


def _row(outcome: ReviewOutcome, now: datetime) -> ReviewOutcomeRow:
    return ReviewOutcomeRow(
        content_id=outcome.content_id,
        category=outcome.category,
        violation=outcome.violation,
        source=outcome.source,
        reviewer=outcome.reviewer,
        reviewed_at=outcome.reviewed_at,
        recorded_at=now,
    )
