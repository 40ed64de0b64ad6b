"""Review outcomes in SQL: ground truth from human review, one label per (content, category)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, bindparam, select, union, update
from sqlalchemy.dialects import postgresql, sqlite

from db.models import AssignmentRow, ModerationResultRow, ReviewOutcomeRow
from db.session import as_utc, make_session_factory
from db.storage_errors import storage_errors
from modq.errors import StorageUnavailable
from modq.reviews import OVERALL, ReviewOutcome

CHUNK = 500  # ids per IN (...) query, rows per INSERT
_TABLE = cast(Table, ReviewOutcomeRow.__table__)
_INSERTS: dict[str, Callable[..., Any]] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


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
        dialect = engine.dialect.name
        if dialect not in _INSERTS:
            raise StorageUnavailable(f"unsupported database dialect {dialect!r}")
        self._engine = engine
        self._insert = _INSERTS[dialect]
        self._sessions = make_session_factory(engine)

    def known_content_ids(self, content_ids: Iterable[str]) -> set[str]:
        """The ids modq has decided (a result or an A/B assignment), read in chunks."""
        wanted = sorted(set(content_ids))
        known: set[str] = set()
        # a NUL in an id is refused (StorageRejected), never retried
        with storage_errors("read known content ids"), self._sessions() as session:
            for chunk in _chunks(wanted):
                query = union(
                    select(ModerationResultRow.content_id).where(
                        ModerationResultRow.content_id.in_(chunk)
                    ),
                    select(AssignmentRow.content_id).where(AssignmentRow.content_id.in_(chunk)),
                )
                known.update(session.scalars(select(query.subquery().c[0])).all())
        return known

    def record(self, outcomes: Sequence[ReviewOutcome]) -> RecordCounts:
        """Store outcomes in one transaction: new labels inserted, corrected ones updated,
        repeated ones left alone (idempotent). Within ``outcomes`` the last label wins.

        Safe beside a concurrent writer of the same labels: inserts skip rows that are there
        already (what another writer stored meanwhile is read back and compared), and updates
        touch only rows whose label differs."""
        latest = {(o.content_id, o.category): o for o in outcomes}
        counts = RecordCounts()
        if not latest:
            return counts
        now = datetime.now(UTC)
        with storage_errors("store review outcomes"), self._engine.begin() as connection:
            stored = self._stored_labels(connection, latest)
            missing = [o for key, o in latest.items() if key not in stored]
            inserted = self._insert_new(connection, missing, now)
            raced = {(o.content_id, o.category) for o in missing} - inserted
            if raced:  # another writer stored them between our read and our insert
                stored.update(self._stored_labels(connection, dict.fromkeys(raced)))
            changed = [
                latest[key] for key, violation in stored.items()
                if violation != latest[key].violation
            ]  # fmt: skip
            counts.new = len(inserted)
            counts.changed = self._update_labels(connection, changed, now)
            counts.unchanged = len(latest) - counts.new - counts.changed
        return counts

    @staticmethod
    def _stored_labels(
        connection: Connection, keys: Mapping[tuple[str, str], object]
    ) -> dict[tuple[str, str], bool]:
        """The stored label of each of ``keys`` that has one (read by content id, in chunks)."""
        table = _TABLE
        stored: dict[tuple[str, str], bool] = {}
        for chunk in _chunks(sorted({content_id for content_id, _ in keys})):
            rows = connection.execute(
                select(table.c.content_id, table.c.category, table.c.violation).where(
                    table.c.content_id.in_(chunk)
                )
            )
            for content_id, category, violation in rows:
                if (content_id, category) in keys:
                    stored[(content_id, category)] = bool(violation)
        return stored

    def _insert_new(
        self, connection: Connection, outcomes: Sequence[ReviewOutcome], now: datetime
    ) -> set[tuple[str, str]]:
        """Insert, skipping any (content_id, category) already there; the keys inserted."""
        table = _TABLE
        if not outcomes:
            return set()
        statement = (
            self._insert(table)
            .on_conflict_do_nothing(index_elements=["content_id", "category"])
            .returning(table.c.content_id, table.c.category)
        )  # executemany with RETURNING: SQLAlchemy sends pages of many rows per statement
        rows = connection.execute(statement, [_values(o, now) for o in outcomes])
        inserted = {(content_id, category) for content_id, category in rows}
        return inserted

    @staticmethod
    def _update_labels(
        connection: Connection, outcomes: Sequence[ReviewOutcome], now: datetime
    ) -> int:
        """Replace corrected labels; only rows whose label differs are touched."""
        if not outcomes:
            return 0
        table = _TABLE
        statement = (
            update(table)
            .where(
                table.c.content_id == bindparam("key_content_id"),
                table.c.category == bindparam("key_category"),
                table.c.violation != bindparam("new_violation"),
            )
            .values(
                violation=bindparam("new_violation"),
                source=bindparam("new_source"),
                reviewer=bindparam("new_reviewer"),
                reviewed_at=bindparam("new_reviewed_at"),
                recorded_at=bindparam("new_recorded_at"),
            )
        )
        parameters = [
            {
                "key_content_id": o.content_id,
                "key_category": o.category,
                "new_violation": o.violation,
                "new_source": o.source,
                "new_reviewer": o.reviewer,
                "new_reviewed_at": as_utc(o.reviewed_at),
                "new_recorded_at": now,
            }
            for o in outcomes
        ]
        connection.execute(statement, parameters)
        return len(outcomes)

    def labels_for(self, content_ids: Iterable[str]) -> dict[str, bool]:
        """The overall verdict per content id: its ``any`` label if it has one, else True if
        any category was labelled a violation, else False; ids without labels are absent."""
        wanted = sorted(set(content_ids))
        by_id: dict[str, dict[str, bool]] = {}
        with storage_errors("read review outcomes"), self._sessions() as session:
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
        return {
            content_id: labels[OVERALL] if OVERALL in labels else any(labels.values())
            for content_id, labels in by_id.items()
        }

    def outcomes(self, content_id: str) -> list[ReviewOutcome]:
        """Every stored label of one content id, by category (times in UTC)."""
        with storage_errors("read review outcomes"), self._sessions() as session:
            rows = session.scalars(
                select(ReviewOutcomeRow)
                .where(ReviewOutcomeRow.content_id == content_id)
                .order_by(ReviewOutcomeRow.category)
            )
            return [
                ReviewOutcome(
                    r.content_id,
                    r.category,
                    r.violation,
                    r.source,
                    r.reviewer,
                    as_utc(r.reviewed_at),
                )
                for r in rows
            ]


def _values(outcome: ReviewOutcome, now: datetime) -> dict[str, object]:
    return {
        "content_id": outcome.content_id,
        "category": outcome.category,
        "violation": outcome.violation,
        "source": outcome.source,
        "reviewer": outcome.reviewer,
        "reviewed_at": as_utc(outcome.reviewed_at),
        "recorded_at": now,
    }
