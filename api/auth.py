"""API keys on the HTTP front: who is calling (a Principal) and what its scopes allow.

A key arrives as ``Authorization: Bearer modq_<key_id>_<secret>``. It is looked up by its
sha256 in SQL (``db.api_keys``); each API process trusts a lookup for ``api_key_cache_s``
(default 5 s), so a revoked key stops working within that bound in every process.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from db.api_keys import ApiKeyRecord, ApiKeyRepository
from db.session import make_engine
from modq.errors import Forbidden, Unauthenticated
from modq.settings import get_settings

UNKNOWN_OR_REVOKED = "unknown or revoked API key"
_CACHE_MAX_ITEMS = 10_000  # a full cache is emptied: lookups are cheap, memory stays bounded


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller behind a valid, unrevoked key."""

    key_id: str
    name: str
    allowed_priorities: frozenset[str]
    may_review: bool
    rate_limit_per_min: float | None = None  # this key's own limit; None = the server's

    @classmethod
    def of(cls, record: ApiKeyRecord) -> Principal:
        """The caller behind ``record``: every setting the key carries, none dropped (the
        scopes are checked by ``require_*``, the rate by ``RateLimiter.admit``)."""
        return cls(
            key_id=record.key_id,
            name=record.name,
            allowed_priorities=record.priorities,
            may_review=record.may_review,
            rate_limit_per_min=record.rate_limit_per_min,
        )


class KeyAuthenticator:
    """Key -> Principal, through a short per-process cache in front of SQL."""

    def __init__(self, repository: ApiKeyRepository, *, cache_s: float) -> None:
        self._repository = repository
        self._cache_s = cache_s
        self._cache: dict[str, tuple[float, ApiKeyRecord | None]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls) -> KeyAuthenticator:
        settings = get_settings()
        repository = ApiKeyRepository(make_engine(settings.database_url))
        return cls(repository, cache_s=settings.api_key_cache_s)

    def principal(self, key: str) -> Principal:
        """The Principal of ``key``; Unauthenticated when it is unknown or revoked.

        Blocking (SQL on a cache miss): call it from a thread, as ``authenticate`` does.
        """
        record = self._record(key)
        if record is None or not record.active:
            # one wording for both: a caller cannot tell a revoked key from one never issued
            raise Unauthenticated(UNKNOWN_OR_REVOKED)
        return Principal.of(record)

    def _record(self, key: str) -> ApiKeyRecord | None:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self._cache_s:
            return hit[1]
        # unknown keys are cached too, so a flood of bad keys costs SQL once per cache_s each
        record = self._repository.lookup(key)
        with self._lock:
            if len(self._cache) >= _CACHE_MAX_ITEMS:
                self._cache.clear()
            self._cache[key] = (now, record)
        return record


def _bearer_key(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthenticated("missing API key: send Authorization: Bearer <key>")
    return key.strip()


def authenticator_of(request: Request) -> KeyAuthenticator:
    """The app's authenticator: ``app.state.key_authenticator``, made from settings if unset."""
    state = request.app.state
    found = getattr(state, "key_authenticator", None)
    if found is None:
        found = KeyAuthenticator.from_settings()
        state.key_authenticator = found
    return found


async def authenticate(request: Request) -> Principal:
    """FastAPI dependency: the caller's Principal, or Unauthenticated (401)."""
    key = _bearer_key(request)
    authenticator = authenticator_of(request)
    return await run_in_threadpool(authenticator.principal, key)


def require_priority(principal: Principal, priority: str) -> None:
    """Forbidden unless the key may use ``priority`` (refused, never downgraded)."""
    if priority not in principal.allowed_priorities:
        allowed = ", ".join(sorted(principal.allowed_priorities)) or "none"
        raise Forbidden(
            f"this API key may not use priority {priority!r} (allowed: {allowed})",
            priority=priority,
        )


def require_review_scope(principal: Principal) -> None:
    """Forbidden unless the key may post reviews."""
    if not principal.may_review:
        raise Forbidden("this API key may not post reviews")
