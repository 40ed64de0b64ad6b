"""Whether this API can serve: broker and database reachable, at least one worker serving (a
model loaded, its model breaker not open, or open with a CPU fallback serving).

Workers are counted by their heartbeats (``modq.heartbeat``): each worker that moderates
records, every second from a thread of its own, that it lives and whether it serves, so a
worker busy with every task thread still counts. (A ``modq_stats`` broadcast with a 0.5 s
reply window was missed under load: busy workers were called dead and /readyz flapped.) One
answer is reused for ``api_readiness_cache_s``: a fresh one costs a Redis PING and HGETALL and
a SQL ``SELECT 1``.

Synchronous requests use the cached answer to refuse at once (503 + Retry-After) when no worker
serves, instead of waiting out their deadline; a stale answer is refreshed in the background
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

from modq import heartbeat
from modq.errors import ModelUnavailable

OK = "ok"
PROBE_TIMEOUT_S = 1.0
NO_WORKER = f"no serving worker (model loaded, breaker not open) beat in {heartbeat.STALE_S:g} s"


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
    """Checks broker, database and workers' heartbeats; caches the answer."""

    def __init__(
        self,
        celery_app: Any,
        broker_url: str,
        engine: Engine,
        *,
        cache_s: float,
        heartbeat_url: str | None = None,
    ):
        self._app = celery_app
        self._redis = self._connect(broker_url)
        # the workers beat into their result store (MODQ_RESULT_BACKEND_URL, else the broker)
        self._beats = self._connect(heartbeat_url) if heartbeat_url else self._redis
        self._engine = engine
        self._cache_s = cache_s
        self._last: Readiness | None = None
        self._lock = asyncio.Lock()
        self._refreshing: asyncio.Task[Readiness] | None = None

    @staticmethod
    def _connect(url: str) -> Redis:
        return Redis.from_url(
            url, socket_connect_timeout=PROBE_TIMEOUT_S, socket_timeout=PROBE_TIMEOUT_S
        )

    def check_now(self) -> Readiness:
        """A fresh answer (blocking: run it in a thread)."""
        checks = {"broker": self._broker(), "database": self._database()}
        ready, workers = self._workers_ready()
        checks["workers"] = workers
        return Readiness(checks, time.monotonic(), ready)

    async def current(self) -> Readiness:
        """The cached answer, or a fresh one when it is older than the cache bound."""
        async with self._lock:
            last = self._last
            if last is None or time.monotonic() - last.checked_at_s >= self._cache_s:
                last = self._last = await run_in_threadpool(self.check_now)
            return last

    async def require_worker(self) -> None:
        """ModelUnavailable (503) when no serving worker beat within ``STALE_S``. The first
        call waits for an answer; later a stale one is refreshed in the background."""
        last = self._last
        if last is None:
            last = await self.current()
        elif time.monotonic() - last.checked_at_s >= self._cache_s and (
            self._refreshing is None or self._refreshing.done()
        ):
            self._refreshing = asyncio.get_running_loop().create_task(self.current())
        if last.workers_ready == 0:
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

    def _workers_ready(self) -> tuple[int, str]:
        """(serving workers, the check's outcome) from the heartbeats."""
        try:
            pulse = heartbeat.read(self._beats)
        except Exception as exc:
            return 0, f"heartbeats unreadable ({type(exc).__name__})"
        return pulse.serving, OK if pulse.serving else NO_WORKER

    def close(self) -> None:
        self._redis.close()
        if self._beats is not self._redis:
            self._beats.close()


_serves = heartbeat.serves  # the rule, where tests and older callers look for it
