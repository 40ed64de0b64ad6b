"""One map from database errors to modq's error tree: permanent or transient.

- **Permanent** (``StorageRejected``, never retried): the database refuses the row itself, so the
  same row can never be stored: a NUL in a string on PostgreSQL, a value longer than its column,
  a broken constraint (``DataError``, ``IntegrityError``, or a value the driver cannot send).
- **Transient** (``StorageUnavailable``, retried by the task's retry policy): the database
  cannot be reached or cannot write now: refused or dropped connections, timeouts, a locked or
  read-only SQLite file, tables not migrated yet. Anything not known to be permanent is
  transient: a retry costs time, a wrong "permanent" loses a job.

Every repository maps its errors here, through ``storage_errors(doing)``, and nowhere else.
Nothing the statement carried reaches a message, a log line or a traceback (content ids and user
ids are parameters): engines hide parameters (``hide_parameters=True``, db/session.py); a
message holds the error class, its SQLSTATE and the server's first line with every quoted value
masked (the schema's own names stay); and the typed error is raised ``from None``, so the
driver's error (PostgreSQL's ``DETAIL: Key (content_id)=(...)``) is not printed with it (it is
still its ``__context__`` for a debugger).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from sqlalchemy import exc as sa

from modq.errors import ModerationError, StorageRejected, StorageUnavailable

log = logging.getLogger(__name__)

PERMANENT: tuple[type[BaseException], ...] = (sa.DataError, sa.IntegrityError)
# raised by a driver while it adapts a parameter (before the server sees it): the value is bad
PERMANENT_ADAPTATION: tuple[type[BaseException], ...] = (ValueError, TypeError, UnicodeError)
# what a repository catches and hands to classify(): SQLAlchemy's errors only. A driver's error
# while it adapts a parameter reaches us wrapped in a StatementError (is_permanent unwraps it);
# a bare ValueError or TypeError is a bug in our own code, raised as it is, never a "refused row"
STORAGE_ERRORS: tuple[type[BaseException], ...] = (sa.SQLAlchemyError,)
READ_ONLY_MARKERS = ("readonly database", "read-only", "unable to open database file")
MASK = '"…"'
# PostgreSQL quotes values and names alike ('invalid input syntax for type uuid: "x"',
# 'violates unique constraint "y"'); Python's reprs quote with '
_QUOTED = re.compile(r'"([^"]*)"|\'([^\']*)\'')
_DIAGNOSTIC_NAMES = ("schema_name", "table_name", "column_name", "constraint_name", "datatype_name")


@cache
def schema_names() -> frozenset[str]:
    """Every table, column, index and constraint name of modq's schema: names, not data."""
    from db.models import Base

    names: set[str] = set()
    for table in Base.metadata.tables.values():
        names.add(table.name)
        names.update(column.name for column in table.columns)
        names.update(str(index.name) for index in table.indexes if index.name)
        names.update(str(c.name) for c in table.constraints if isinstance(c.name, str))
    return frozenset(names)


def _masked(text: str, original: BaseException) -> str:
    diagnostic = getattr(original, "diag", None)  # psycopg: the server's structured fields
    kept = schema_names() | {
        str(name) for field in _DIAGNOSTIC_NAMES if (name := getattr(diagnostic, field, None))
    }

    def mask(match: re.Match[str]) -> str:
        inner = match.group(1) if match.group(1) is not None else match.group(2)
        return match.group(0) if inner in kept else MASK

    return _QUOTED.sub(mask, text)


def reason(error: BaseException) -> str:
    """``Class [SQLSTATE]: first line`` of the driver's error: no SQL, no parameters, no
    ``DETAIL`` line, and no quoted value (a connection error, which ran no statement, keeps its
    quoted host)."""
    original = getattr(error, "orig", None) or error
    lines = str(original).strip().splitlines()
    first = lines[0][:300] if lines else ""
    if not (isinstance(error, sa.DBAPIError) and error.statement is None):
        first = _masked(first, original)
    state = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    name = type(original).__name__ + (f" [{state}]" if state else "")
    return f"{name}: {first}".rstrip(": ")


def is_permanent(error: BaseException) -> bool:
    """True if storing the same row again can never succeed."""
    if isinstance(error, (StorageRejected, *PERMANENT)):
        return True
    if isinstance(error, sa.StatementError) and not isinstance(error, sa.DBAPIError):
        return isinstance(error.orig, PERMANENT_ADAPTATION)  # e.g. a value psycopg cannot send
    return isinstance(error, PERMANENT_ADAPTATION)


def is_read_only(error: BaseException) -> bool:
    """A SQLite file (or its folder) this process cannot write."""
    text = str(getattr(error, "orig", None) or error).lower()
    return any(marker in text for marker in READ_ONLY_MARKERS)


def classify(
    error: BaseException, doing: str, *, refused: type[ModerationError] = StorageRejected
) -> ModerationError:
    """``error`` (raised while ``doing``, e.g. "store results") as modq's typed error:
    ``refused`` (``StorageRejected``, or a room's own error for a row it refuses) when the same
    row can never be stored, ``StorageUnavailable`` otherwise."""
    if isinstance(error, ModerationError):
        return error
    if is_permanent(error):
        return refused(f"cannot {doing}: the database refused the row ({reason(error)})")
    if is_read_only(error):
        log.error(
            "modq: cannot %s: the database is read-only (%s); jobs are retried until it is "
            "writable again (check the file's and its folder's permissions and mount)",
            doing,
            reason(error),
        )
        return StorageUnavailable(f"cannot {doing}: database is read-only ({reason(error)})")
    return StorageUnavailable(f"cannot {doing}: database unavailable ({reason(error)})")


@contextmanager
def storage_errors(
    doing: str,
    *,
    refused: type[ModerationError] = StorageRejected,
    catch: tuple[type[BaseException], ...] = STORAGE_ERRORS,
) -> Iterator[None]:
    """Run a repository's database work: what it raises (``catch``: the database's and the
    drivers' errors) leaves as ``classify(error, doing)``, without the driver's error chained
    for printing. ``catch=(SQLAlchemyError,)`` where the body runs a caller's code too."""
    try:
        yield
    except catch as exc:
        raise classify(exc, doing, refused=refused) from None
