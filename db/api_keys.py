"""API keys in SQL: stored only as a hash, with the scopes each key carries."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, select, update

from db.models import ApiKeyRow
from db.session import as_utc, make_session_factory
from db.storage_errors import storage_errors
from modq.errors import InvalidContent

KEY_PREFIX = "modq_"
PRIORITIES = ("urgent", "normal", "bulk")


def hash_key(key: str) -> str:
    """sha256 of the whole key, hex.

    A plain fast hash is enough here, unlike for passwords: the secret part is 256 random bits
    (``secrets.token_urlsafe(32)``), so no dictionary or brute force can invert the hash, and a
    fast hash keeps the per-request lookup cheap. A salt would add nothing for such input.
    """
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> tuple[str, str]:
    """A fresh (key_id, key): the key reads ``modq_<key_id>_<secret>``; the id is public."""
    key_id = secrets.token_hex(6)
    return key_id, f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def parse_priorities(values: Iterable[str]) -> frozenset[str]:
    """The priorities a key may use; an unknown one is refused."""
    wanted = frozenset(v.strip() for v in values if v.strip())
    unknown = wanted - set(PRIORITIES)
    if unknown:
        raise InvalidContent(
            f"unknown priorities {sorted(unknown)}; choose from {', '.join(PRIORITIES)}"
        )
    return wanted


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """One key as stored (never its secret)."""

    key_id: str
    name: str
    priorities: frozenset[str]
    may_review: bool
    rate_limit_per_min: float | None  # None: the server's MODQ_RATE_LIMIT_PER_MIN
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _record(row: ApiKeyRow) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_id=row.key_id,
        name=row.name,
        priorities=frozenset(row.priorities),
        may_review=row.may_review,
        rate_limit_per_min=row.rate_limit_per_min,
        created_at=as_utc(row.created_at),
        revoked_at=as_utc(row.revoked_at),
        last_used_at=as_utc(row.last_used_at),
    )


class ApiKeyRepository:
    """Create, list, revoke and look up keys; SQL failures are typed by db/storage_errors.py."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = make_session_factory(engine)

    def create(
        self,
        name: str,
        priorities: Iterable[str],
        *,
        may_review: bool = False,
        rate_limit_per_min: float | None = None,
    ) -> tuple[ApiKeyRecord, str]:
        """A new key: its record and the key itself, which is shown once and never stored.
        ``rate_limit_per_min`` overrides the server's limit for this key (0 = unlimited)."""
        if not name.strip():
            raise InvalidContent("an API key needs a name")
        if rate_limit_per_min is not None and not 0 <= rate_limit_per_min < float("inf"):
            raise InvalidContent("a key's rate limit is a number of requests per minute >= 0")
        allowed = parse_priorities(priorities)
        if not allowed and not may_review:
            raise InvalidContent("an API key needs at least one priority or the review scope")
        key_id, key = new_key()
        row = ApiKeyRow(
            key_id=key_id,
            key_sha256=hash_key(key),
            name=name.strip(),
            priorities=sorted(allowed, key=PRIORITIES.index),
            may_review=may_review,
            rate_limit_per_min=rate_limit_per_min,
            created_at=datetime.now(UTC),
        )
        with storage_errors("store the API key"), self._sessions.begin() as session:
            session.add(row)
        return _record(row), key

    def list(self) -> list[ApiKeyRecord]:
        """Every key, oldest first, revoked ones included."""
        with storage_errors("list API keys"), self._sessions() as session:
            rows = session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.id)).all()
            return [_record(row) for row in rows]

    def revoke(self, key_id: str) -> bool:
        """Revoke a key; False when no active key has this id."""
        with storage_errors("revoke the API key"), self._sessions.begin() as session:
            result = session.execute(
                update(ApiKeyRow)
                .where(ApiKeyRow.key_id == key_id, ApiKeyRow.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def lookup(self, key: str, *, touch: bool = True) -> ApiKeyRecord | None:
        """The record of this key (revoked or not), or None; stamps last_used_at if ``touch``."""
        digest = hash_key(key)
        with storage_errors("read API keys"), self._sessions.begin() as session:
            row = session.scalars(
                select(ApiKeyRow).where(ApiKeyRow.key_sha256 == digest)
            ).one_or_none()
            if row is None:
                return None
            if touch and row.revoked_at is None:
                row.last_used_at = datetime.now(UTC)
            return _record(row)
