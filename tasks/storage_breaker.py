"""The database breaker of a worker: when the database is down, stop taking jobs.

Without it every job a worker takes during an outage fails, is retried, is taken again and
fails again: the database is hammered by every job's retries and each job spends its retry
budget. With it, after ``MODQ_STORAGE_BREAKER_FAILURES`` consecutive failed writes (the
database unavailable, not a row it refused) the breaker of this worker process opens, and:

- the worker stops consuming: each task queue's consumer is cancelled (the same call as Celery's
  ``cancel_consumer`` control command, scheduled on the consumer's event loop), so new jobs
  stay on the broker and no retry count climbs;
- jobs already in hand fail fast with ``StorageUnavailable`` (no round trip to the database)
  and go back on their queue by the retry policy: nothing is lost;
- a prober thread tries the database every ``MODQ_STORAGE_BREAKER_PROBE_S`` (``SELECT 1``; on
  SQLite ``BEGIN IMMEDIATE``, which also fails on a read-only file). The first success closes
  the breaker and the worker consumes its queues again.

Readiness (``/healthz``'s ``storage_breaker`` check) is 503 while it is open, and the gauge
``modq_worker_db_breaker_state`` shows 0 closed, 1 half-open (a probe is out), 2 open.

Pausing needs the consumer in the same process: the threads and solo pools (modq's default).
Under prefork the children's breakers fail jobs fast but cannot pause the parent's consumer.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from celery.signals import worker_ready
from sqlalchemy import Engine, text

from db.storage_errors import classify
from modq.circuit import BreakerState, CircuitBreaker
from modq.errors import ModerationError, StorageUnavailable
from modq.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")
NAME = "database"
READINESS_CHECK = "storage_breaker"
GAUGE = "modq_worker_db_breaker_state"
WINDOW_S = 3_600.0  # failures count as consecutive however far apart (a success resets them)


class ConsumerPause:
    """Cancels and re-adds this worker's task-queue consumers on its event loop.

    ``pause()`` and ``resume()`` only set the wanted state and schedule one reconciliation on
    the consumer's loop (callbacks there run in no set order): whichever runs last applies the
    latest wish, so a quick open-close never leaves the worker paused."""

    def __init__(self) -> None:
        self._consumer: Any = None
        self._want_paused = False
        self._paused: list[str] = []  # the queues this object cancelled (on the loop only)
        self.pauses = 0  # times consumption was paused (tests, logs)

    def attach(self, consumer: Any) -> None:
        self._consumer = consumer

    @property
    def attached(self) -> bool:
        return self._consumer is not None

    def pause(self) -> bool:
        """Stop consuming every task queue; False when there is no consumer here."""
        self._want_paused = True
        return self._schedule()

    def resume(self) -> None:
        self._want_paused = False
        self._schedule()

    def _schedule(self) -> bool:
        consumer = self._consumer
        if consumer is None:
            return False
        consumer.call_soon(self._reconcile)
        return True

    def _reconcile(self) -> None:  # on the consumer's loop
        consumer = self._consumer
        if self._want_paused and not self._paused:
            task_consumer = consumer.task_consumer
            names = [queue.name for queue in (task_consumer.queues if task_consumer else ())]
            for name in names:
                consumer.cancel_task_queue(name)
            self._paused = names
            self.pauses += 1
            log.warning("modq: database breaker open: stopped consuming %s", ", ".join(names))
        elif not self._want_paused and self._paused:
            names, self._paused = self._paused, []
            for name in names:
                consumer.add_task_queue(name)
            log.warning("modq: database breaker closed: consuming %s again", ", ".join(names))


_pause = ConsumerPause()


@worker_ready.connect
def _attach_consumer(sender: Any = None, **_: Any) -> None:
    """The consumer whose queues the breaker pauses (threads and solo pools: this process)."""
    if sender is not None and hasattr(sender, "cancel_task_queue"):
        _pause.attach(sender)


class StorageBreaker:
    """Guards one process's writes to ``engine`` (see the module doc)."""

    def __init__(
        self,
        engine: Engine,
        *,
        failure_threshold: int,
        probe_s: float,
        pause: ConsumerPause | None = None,
    ) -> None:
        self.engine = engine
        self.probe_s = probe_s
        self.enabled = failure_threshold > 0
        self.breaker = CircuitBreaker(
            NAME,
            failure_threshold=max(1, failure_threshold),
            window_s=WINDOW_S,
            reset_s=probe_s,
        )
        self.pause = pause if pause is not None else _pause
        self.breaker.add_listener(self._changed)
        self._stop = threading.Event()
        self._prober: threading.Thread | None = None
        self._gauge: Any = _gauge()

    @classmethod
    def from_settings(cls, engine: Engine, settings: Settings) -> StorageBreaker:
        return cls(
            engine,
            failure_threshold=settings.storage_breaker_failures,
            probe_s=settings.storage_breaker_probe_s,
        )

    def call(self, write: Callable[[], T]) -> T:
        """Run ``write`` unless the breaker is open (then ``StorageUnavailable`` at once);
        an unavailable database counts toward opening it, anything else resets the count."""
        if self.enabled and not self.breaker.closed:
            snapshot = self.breaker.snapshot()
            raise StorageUnavailable(
                f"database breaker open (last: {snapshot.last_error}); the job is retried"
            )
        try:
            result = write()
        except StorageUnavailable as exc:
            if self.enabled:
                self.breaker.record_failure(str(exc))
            raise
        except ModerationError:  # the database answered (it refused a row): not an outage
            if self.enabled:
                self.breaker.record_success()
            raise
        if self.enabled:
            self.breaker.record_success()
        return result

    def readiness(self) -> tuple[str, str]:
        """``(check name, "ok" or why not)`` for /healthz."""
        if self.breaker.closed:
            return READINESS_CHECK, "ok"
        snapshot = self.breaker.snapshot()
        paused = "consumers paused" if self.pause.attached else "jobs fail fast"
        return READINESS_CHECK, (
            f"{snapshot.state.value} after {snapshot.consecutive_failures} failures "
            f"(last: {snapshot.last_error}); {paused}; probing every {self.probe_s:g} s"
        )

    def close(self) -> None:
        self._stop.set()

    def probe(self) -> None:
        """One try of the database: a read (PostgreSQL) or a write lock (SQLite)."""
        with self.engine.connect() as connection:
            if self.engine.dialect.name == "sqlite":
                connection.exec_driver_sql("BEGIN IMMEDIATE")  # fails on a read-only file
                connection.exec_driver_sql("ROLLBACK")
            else:
                connection.execute(text("SELECT 1"))

    def _changed(self, name: str, old: BreakerState, new: BreakerState) -> None:
        if self._gauge is not None:
            self._gauge.set(new.gauge_value)
        if new is BreakerState.OPEN and old is BreakerState.CLOSED:
            snapshot = self.breaker.snapshot()
            paused = self.pause.pause()
            log.error(
                "modq: database breaker open after %d failures (last: %s); %s; probing every %g s",
                snapshot.consecutive_failures,
                snapshot.last_error,
                "consumers paused, jobs stay on the broker"
                if paused
                else "no consumer here to pause (prefork child): jobs fail fast and retry",
                self.probe_s,
            )
            self._start_prober()
        elif new is BreakerState.CLOSED:
            log.warning("modq: database answers again: breaker closed")
            self.pause.resume()

    def _start_prober(self) -> None:
        if self._prober is not None and self._prober.is_alive():
            return
        self._prober = threading.Thread(target=self._probe_loop, name="modq-db-probe", daemon=True)
        self._prober.start()

    def _probe_loop(self) -> None:
        while not self._stop.wait(self.probe_s):
            if self.breaker.closed:
                return
            if not self.breaker.begin_trial():
                continue
            try:
                self.probe()
            except Exception as exc:  # any failure is the probe's answer, never its end
                self.breaker.record_failure(str(classify(exc, "probe the database")))
                continue
            self.breaker.record_success()
            return


def _gauge() -> Any:
    """The breaker gauge in this process's metrics registry (once per process)."""
    global _state_gauge
    if _state_gauge is None:
        from prometheus_client import Gauge

        from tasks.worker_metrics import multiprocess_dir, registry

        shared = multiprocess_dir() is not None
        _state_gauge = Gauge(
            GAUGE,
            "The database circuit breaker: 0 closed, 1 half-open, 2 open.",
            registry=None if shared else registry(),
            multiprocess_mode="livemax",
        )
    return _state_gauge


_state_gauge: Any = None
_current: StorageBreaker | None = None


def install(engine: Engine, settings: Settings) -> StorageBreaker:
    """This process's breaker for ``engine`` (the pipeline's); readiness reads it."""
    global _current
    _current = StorageBreaker.from_settings(engine, settings)
    return _current


def readiness_check() -> tuple[str, str]:
    """/healthz: the database breaker of this process (``ok`` before any job)."""
    return _current.readiness() if _current is not None else (READINESS_CHECK, "ok")


def current_state() -> str:
    """This process's database breaker state (``closed`` before any job), for ``modq_stats``."""
    return _current.breaker.state.value if _current is not None else "closed"
