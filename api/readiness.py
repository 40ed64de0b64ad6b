"""Whether this API can serve: broker and database reachable, at least one worker with a model
loaded. One answer is reused for ``api_readiness_cache_s``: a fresh one costs a broadcast to the
workers (``modq_stats``, up to ``WORKER_REPLY_S``), a Redis PING and a SQL ``SELECT 1``.

Synchronous requests use the cached answer to refuse at once (503 + Retry-After) when no worker
is ready, instead of waiting out their deadline; a stale answer is refreshed in the background
(the first request of a process waits for the first answer). Asynchronous jobs (``/v1/jobs``)
are accepted without a worker: they wait on their queue.
A prefork worker's parent holds no model and so does not count as ready (threads pool only).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from redis import Redis
from sqlalchemy import Engine, text
from starlette.concurrency import run_in_threadpool

from modq.errors import ModelUnavailable

OK = "ok"
WORKER_REPLY_S = 0.5  # how long a fresh answer waits for workers' replies
# a busy worker may miss one broadcast: requests are refused only when none answered this long
WORKER_GRACE_S = 10.0
PROBE_TIMEOUT_S = 1.0


@dataclass(frozen=True, slots=True)
class Readiness:
    checks: dict[str, str]
    checked_at_s: float
    workers_ready: int

    @property
    def ok(self) -> bool:
        return all(outcome == OK for outcome in self.checks.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": "ready" if self.ok else "not_ready",
            "checks": self.checks,
            "workers_ready": self.workers_ready,
        }


class ReadinessProbe:
    """Checks broker, database and workers; caches the answer."""

    def __init__(self, celery_app: Any, broker_url: str, engine: Engine, *, cache_s: float):
        self._app = celery_app
        self._redis = Redis.from_url(
            broker_url, socket_connect_timeout=PROBE_TIMEOUT_S, socket_timeout=PROBE_TIMEOUT_S
        )
        self._engine = engine
        self._cache_s = cache_s
        self._last: Readiness | None = None
        self._lock = asyncio.Lock()
        self._refreshing: asyncio.Task[Readiness] | None = None
        self._worker_seen_at_s: float | None = None

    def check_now(self) -> Readiness:
        """A fresh answer (blocking: run it in a thread)."""
        checks = {"broker": self._broker(), "database": self._database()}
        ready = self._workers_ready() if checks["broker"] == OK else 0
        checks["workers"] = (
            OK if ready else "no serving worker (model loaded, breaker not open) answered"
        )
        now_s = time.monotonic()
        if ready:
            self._worker_seen_at_s = now_s
        return Readiness(checks, now_s, ready)

    async def current(self) -> Readiness:
        """The cached answer, or a fresh one when it is older than the cache bound."""
        async with self._lock:
            last = self._last
            if last is None or time.monotonic() - last.checked_at_s >= self._cache_s:
                last = self._last = await run_in_threadpool(self.check_now)
            return last

    async def require_worker(self) -> None:
        """ModelUnavailable (503) when no ready worker answered for ``WORKER_GRACE_S``. The
        first call waits for an answer; later a stale one is refreshed in the background."""
        last = self._last
        if last is None:
            last = await self.current()
        elif time.monotonic() - last.checked_at_s >= self._cache_s and (
            self._refreshing is None or self._refreshing.done()
        ):
            self._refreshing = asyncio.get_running_loop().create_task(self.current())
        seen = self._worker_seen_at_s
        if last.workers_ready == 0 and (seen is None or time.monotonic() - seen > WORKER_GRACE_S):
            raise ModelUnavailable(
                "no worker serving a model is ready; retry later", reason=last.checks["workers"]
            )

    def _broker(self) -> str:
        try:
            self._redis.ping()
        except Exception as exc:  # any failure is the answer
            return f"unreachable ({type(exc).__name__})"
        return OK

    def _database(self) -> str:
        try:
            with self._engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:
            return f"unreachable ({type(exc).__name__})"
        return OK

    def _workers_ready(self) -> int:
        try:
            replies = self._app.control.broadcast("modq_stats", reply=True, timeout=WORKER_REPLY_S)
        except Exception:
            return 0
        return sum(
            1
            for reply in replies or []
            for stats in reply.values()
            if isinstance(stats, dict) and _serves(stats)
        )

    def close(self) -> None:
        self._redis.close()


def _serves(stats: dict[str, Any]) -> bool:
    """A worker serves jobs when its model is loaded and its model breaker is not open, or is
    open with a CPU fallback serving (``modq_stats``)."""
    if not stats.get("model_loaded"):
        return False
    return stats.get("model_breaker") != "open" or bool(stats.get("model_fallback"))
