"""Engines and sessions from a URL (SQLite file by default, PostgreSQL at scale)."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, overload

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)


def make_engine(url: str) -> Engine:
    """An engine that survives restarts of the server (pre-ping) and SQLite's quirks, and never
    shows a statement's parameters (content ids, user ids) in an error or a log line: every
    engine of modq is made here (tests/db/test_no_data_in_errors.py holds the rule)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            warn_if_read_only(Path(parsed.database))
        engine = create_engine(url, connect_args={"timeout": 30}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _wal(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        return engine
    return create_engine(
        url, pool_pre_ping=True, pool_size=5, max_overflow=10, hide_parameters=True
    )


def warn_if_read_only(path: Path) -> bool:
    """Log an error (once, at start) when this process cannot write the SQLite file or its
    folder (SQLite writes its -wal and -shm files beside it): every write would fail, and the
    jobs would be retried until it can. True if it is read-only."""
    folder_ok = os.access(path.parent, os.W_OK)
    file_ok = not path.exists() or os.access(path, os.W_OK)
    if folder_ok and file_ok:
        return False
    log.error(
        "modq: the SQLite database %s is read-only for this process (%s not writable): every "
        "write will fail with StorageUnavailable until it is writable",
        path,
        "the file" if not file_ok else "its folder",
    )
    return True


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@overload
def as_utc(moment: datetime) -> datetime: ...
@overload
def as_utc(moment: None) -> None: ...
def as_utc(moment: datetime | None) -> datetime | None:
    """In UTC. SQLite keeps the wall time and drops the zone, so every time is stored in UTC and
    a zone-less time read back (or given) is taken to be UTC already."""
    if moment is None:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
