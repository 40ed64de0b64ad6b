"""Alias history: every move of a registry alias (who, when, from, to, why), in SQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from db.models import AliasMoveRow
from db.session import as_utc, make_session_factory
from db.storage_errors import storage_errors


@dataclass(frozen=True, slots=True)
class AliasMove:
    model_name: str
    alias: str
    action: str  # promote | rollback
    from_version: str | None
    to_version: str
    actor: str
    reason: str
    moved_at: datetime


class AliasHistory:
    """Append-only log of alias moves, and what a rollback returns to."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = make_session_factory(engine)

    @contextmanager
    def recording(self, move: AliasMove) -> Iterator[None]:
        """Write ``move`` in a transaction that commits only if the body (the real alias
        move) succeeds: a failed move leaves no row, a row always means a move happened."""
        # the body is the caller's alias move: only the database's own errors are mapped
        with (
            storage_errors("record alias move", catch=(SQLAlchemyError,)),
            self._sessions() as session,
            session.begin(),
        ):
            session.add(_row(move))
            session.flush()
            yield

    def moves(self, model_name: str, alias: str | None = None) -> list[AliasMove]:
        """Moves of ``model_name`` (optionally one alias), oldest first."""
        query = select(AliasMoveRow).where(AliasMoveRow.model_name == model_name)
        if alias is not None:
            query = query.where(AliasMoveRow.alias == alias)
        with storage_errors("read alias history"), self._sessions() as session:
            rows = session.scalars(query.order_by(AliasMoveRow.id)).all()
        return [_move(r) for r in rows]

    def version_at(self, model_name: str, alias: str, when: datetime) -> str | None:
        """The version ``alias`` pointed at, at ``when`` (None before its first move)."""
        held: str | None = None
        for move in self.moves(model_name, alias):
            if as_utc(move.moved_at) > as_utc(when):
                break
            held = move.to_version
        return held

    def rollback_target(self, model_name: str, alias: str) -> str | None:
        """The version that held ``alias`` before the current one was promoted.

        Moves replay as a stack: a promotion pushes, a rollback pops; so two rollbacks in a
        row go back two promotions, never back and forth.
        """
        stack: list[str] = []
        for move in self.moves(model_name, alias):
            if move.action == "rollback":
                if stack:
                    stack.pop()
            else:
                if not stack and move.from_version is not None:
                    stack.append(move.from_version)  # held before modq recorded anything
                stack.append(move.to_version)
        return stack[-2] if len(stack) >= 2 else None


def _row(move: AliasMove) -> AliasMoveRow:
    return AliasMoveRow(
        model_name=move.model_name,
        alias=move.alias,
        action=move.action,
        from_version=move.from_version,
        to_version=move.to_version,
        actor=move.actor,
        reason=move.reason,
        moved_at=move.moved_at,
    )


def _move(row: AliasMoveRow) -> AliasMove:
    return AliasMove(
        model_name=row.model_name,
        alias=row.alias,
        action=row.action,
        from_version=row.from_version,
        to_version=row.to_version,
        actor=row.actor,
        reason=row.reason,
        moved_at=as_utc(row.moved_at),
    )


__all__ = ["AliasHistory", "AliasMove"]
