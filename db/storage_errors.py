"""One map from database errors to modq's error tree: permanent or transient.

- **Permanent** (``StorageRejected``, never retried): the database refuses the row itself, so the
  same row can never be stored: a NUL in a string on PostgreSQL, a value longer than its column,
  a broken constraint (``DataError``, ``IntegrityError``, or a value the driver cannot send).
- **Transient** (``StorageUnavailable``, retried by the task's retry policy): the database
  cannot be reached or cannot write now: refused or dropped connections, timeouts, a locked or
  read-only SQLite file, tables not migrated yet. Anything not known to be permanent is
  transient: a retry costs time, a wrong "permanent" loses a job.

Messages name the error class and the server's first line, never the statement's parameters
(they hold content ids and user ids).
"""

from __future__ import annotations

import logging

from sqlalchemy import exc as sa

from modq.errors import ModerationError, StorageRejected, StorageUnavailable

log = logging.getLogger(__name__)

PERMANENT: tuple[type[BaseException], ...] = (sa.DataError, sa.IntegrityError)
# raised by a driver while it adapts a parameter (before the server sees it): the value is bad
PERMANENT_ADAPTATION: tuple[type[BaseException], ...] = (ValueError, TypeError, UnicodeError)
# what a repository catches and hands to classify(): the database's and the drivers' errors
STORAGE_ERRORS: tuple[type[BaseException], ...] = (sa.SQLAlchemyError, *PERMANENT_ADAPTATION)
READ_ONLY_MARKERS = ("readonly database", "read-only", "unable to open database file")


def reason(error: BaseException) -> str:
    """``Class: first line`` of the driver's error, without the SQL or its parameters."""
    original = getattr(error, "orig", None) or error
    text = str(original).strip().splitlines()
    return f"{type(original).__name__}: {text[0][:300] if text else ''}".rstrip(": ")


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


def classify(error: BaseException, doing: str) -> ModerationError:
    """``error`` (raised while ``doing``, e.g. "store results") as modq's typed error."""
    if isinstance(error, ModerationError):
        return error
    if is_permanent(error):
        return StorageRejected(f"cannot {doing}: the database refused the row ({reason(error)})")
    if is_read_only(error):
        log.error(
            "modq: cannot %s: the database is read-only (%s); jobs are retried until it is "
            "writable again (check the file's and its folder's permissions and mount)",
            doing,
            reason(error),
        )
        return StorageUnavailable(f"cannot {doing}: database is read-only ({reason(error)})")
    return StorageUnavailable(f"cannot {doing}: database unavailable ({reason(error)})")
