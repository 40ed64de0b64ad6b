"""The worker's heartbeat (``modq.heartbeat``): a daemon thread that records, every
``INTERVAL_S``, that this worker lives and whether it serves (model loaded, model breaker).

It runs beside the task threads, not in them, so a worker busy with every thread still beats:
the API's readiness reads these beats instead of a broadcast that a loaded worker answers late.
A ``modq webhooks`` consumer (no model) never beats. Started at ``worker_ready``; stopped, with
its record deleted, at ``worker_shutdown``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from celery.signals import worker_ready, worker_shutdown
from redis import Redis
from redis.exceptions import RedisError

from modq import heartbeat
from modq.settings import get_settings

log = logging.getLogger(__name__)

LOG_EVERY_S = 300.0  # while beats keep failing, say so again this often


class Heartbeat:
    """Beats for ``node`` until ``stop``. No error ends the thread: a beat that fails (Redis
    away, or anything ``state`` or the encoding raises) is logged, at most once per
    ``LOG_EVERY_S`` while failures go on, and the next beat is tried on time. A thread that
    died on one unexpected error left its worker never ready again (503 to every sync call)."""

    def __init__(
        self,
        redis: Redis,
        node: str,
        *,
        interval_s: float = heartbeat.INTERVAL_S,
        state: Callable[[], dict[str, Any]] | None = None,
    ):
        self.redis, self.node, self.interval_s = redis, node, interval_s
        self.state = state or serving_state
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="modq-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        logged_at: float | None = None  # when the current run of failures was last logged
        while not self._stopped.is_set():
            try:
                heartbeat.beat(self.redis, self.node, self.state())
                logged_at = None
            except Exception as exc:  # never fatal: the next beat may work
                now = time.monotonic()
                if logged_at is None or now - logged_at >= LOG_EVERY_S:
                    logged_at = now
                    if isinstance(exc, RedisError | OSError):
                        log.warning("modq: heartbeat not recorded (%s)", type(exc).__name__)
                    else:
                        log.error("modq: heartbeat not recorded", exc_info=True)
            self._stopped.wait(self.interval_s)

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(self.interval_s + 2.0)
        with contextlib.suppress(RedisError, OSError):  # else stale within STALE_S anyway
            heartbeat.forget(self.redis, self.node)
        self.redis.close()


def serving_state() -> dict[str, Any]:
    """This process's model and breaker state, as ``modq_stats`` reports it."""
    from gpu_worker.runtime import current_engine
    from tasks.signals import breaker_stats

    return {"model_loaded": current_engine() is not None, **breaker_stats()}


_beating: Heartbeat | None = None


@worker_ready.connect
def _start(sender: Any = None, **_: Any) -> None:
    global _beating
    from tasks.app import app
    from tasks.webhooks import consumes_only_webhooks

    if consumes_only_webhooks(app) or _beating is not None:
        return
    node = getattr(sender, "hostname", None) or f"{socket.gethostname()}:{os.getpid()}"
    url = get_settings().effective_result_backend_url
    redis = Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=1.0)
    _beating = Heartbeat(redis, str(node))
    _beating.start()


@worker_shutdown.connect
def _stop(**_: Any) -> None:
    global _beating
    if _beating is not None:
        _beating.stop()
        _beating = None
