"""A circuit breaker: stop calling a dependency that keeps failing, try it again later.

Pure (no I/O, no threads of its own) and thread-safe; the model and the database breakers
of a worker are instances of it::

    closed ──(failure_threshold consecutive failures within window_s)──▶ open
    open ──(reset_s passed: one trial allowed)──▶ half_open
    half_open ──(the trial succeeds)──▶ closed
    half_open ──(the trial fails)──▶ open (the timer starts again)

A caller asks ``allow()`` before it calls the dependency and reports the outcome with
``record_success()`` or ``record_failure(reason)``. While open, ``allow()`` is False: the
caller parks its work (retries later) or uses a fallback, and the dependency rests. A caller
that probes on its own schedule (a tiny inference every few seconds) uses ``begin_trial()``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

log = logging.getLogger(__name__)


class BreakerState(StrEnum):
    CLOSED = "closed"
    HALF_OPEN = "half_open"
    OPEN = "open"

    @property
    def gauge_value(self) -> int:
        """0 closed, 1 half-open, 2 open: what a Prometheus gauge shows."""
        return {"closed": 0, "half_open": 1, "open": 2}[self.value]


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    name: str
    state: BreakerState
    consecutive_failures: int
    opened_at_s: float | None  # on the breaker's clock, while not closed
    last_error: str | None  # the reason of the last failure recorded
    retry_after_s: float  # until the next trial (0 when closed)


Listener = Callable[[str, BreakerState, BreakerState], None]  # (name, old, new)


class CircuitBreaker:
    """Counts consecutive failures; opens at ``failure_threshold`` within ``window_s``; after
    ``reset_s`` open, lets one trial through (half-open)."""

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int,
        window_s: float,
        reset_s: float,
        trial_timeout_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``trial_timeout_s``: a trial that never reports back (its caller died) is
        forgotten after this long, and another one is allowed."""
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be >= 1, got {failure_threshold}")
        if window_s <= 0 or reset_s < 0:
            raise ValueError(f"window_s must be > 0 and reset_s >= 0, got {window_s}, {reset_s}")
        self.name = name
        self.failure_threshold = failure_threshold
        self.window_s = window_s
        self.reset_s = reset_s
        self.trial_timeout_s = trial_timeout_s
        self._clock = clock
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._first_failure_s = 0.0
        self._opened_at_s: float | None = None
        self._last_error: str | None = None
        self._trial_out = False
        self._trial_started_s = 0.0
        self._listeners: list[Listener] = []

    # --- reading ------------------------------------------------------------------------
    @property
    def state(self) -> BreakerState:
        return self._state

    @property
    def closed(self) -> bool:
        return self._state is BreakerState.CLOSED

    def retry_after_s(self) -> float:
        """Seconds until a trial is allowed (0 when closed or due)."""
        with self._lock:
            return self._retry_after_locked()

    def snapshot(self) -> BreakerSnapshot:
        with self._lock:
            return BreakerSnapshot(
                self.name,
                self._state,
                self._failures,
                self._opened_at_s,
                self._last_error,
                self._retry_after_locked(),
            )

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(name, old, new)`` on every state change (outside the lock)."""
        if listener not in self._listeners:
            self._listeners.append(listener)

    # --- asking and reporting -------------------------------------------------------------
    def allow(self) -> bool:
        """May the caller call the dependency now? Closed: yes. Open: no, until ``reset_s``
        has passed; then one caller gets a trial (half-open) and the rest wait for its
        outcome."""
        with self._lock:
            if self._state is BreakerState.CLOSED:
                return True
            old, allowed = self._state, self._start_trial_locked()
            new = self._state
        self._changed(old, new)
        return allowed

    def begin_trial(self) -> bool:
        """Take the trial if one is due (open for ``reset_s``, none out): for a prober that
        runs on its own schedule. False when closed (nothing to probe) or not due."""
        with self._lock:
            if self._state is BreakerState.CLOSED:
                return False
            old, allowed = self._state, self._start_trial_locked()
            new = self._state
        self._changed(old, new)
        return allowed

    def record_success(self) -> None:
        with self._lock:
            old = self._state
            self._state = BreakerState.CLOSED
            self._failures = 0
            self._opened_at_s = None
            self._trial_out = False
        self._changed(old, BreakerState.CLOSED)

    def record_failure(self, reason: str) -> None:
        now = self._clock()
        with self._lock:
            old = self._state
            self._last_error = reason[:500]
            if old is BreakerState.CLOSED:
                if self._failures == 0 or now - self._first_failure_s > self.window_s:
                    self._failures, self._first_failure_s = 0, now
                self._failures += 1
                if self._failures >= self.failure_threshold:
                    self._open_locked(now)
            elif old is BreakerState.HALF_OPEN:
                self._failures += 1
                self._open_locked(now)
            else:
                self._failures += 1  # a call already in flight when it opened
            new = self._state
        self._changed(old, new)

    def trip(self, reason: str) -> None:
        """Open now, whatever the count (an operator, or a failure that is surely lasting)."""
        with self._lock:
            old = self._state
            self._last_error = reason[:500]
            self._open_locked(self._clock())
        self._changed(old, BreakerState.OPEN)

    # --- inside the lock ------------------------------------------------------------------
    def _open_locked(self, now: float) -> None:
        self._state = BreakerState.OPEN
        self._opened_at_s = now
        self._trial_out = False

    def _start_trial_locked(self) -> bool:
        now = self._clock()
        lost = self._trial_out and now - self._trial_started_s > self.trial_timeout_s
        if (self._trial_out and not lost) or self._retry_after_locked() > 0:
            return False
        self._state = BreakerState.HALF_OPEN
        self._trial_out = True
        self._trial_started_s = now
        return True

    def _retry_after_locked(self) -> float:
        if self._state is BreakerState.CLOSED or self._opened_at_s is None:
            return 0.0
        return max(0.0, self._opened_at_s + self.reset_s - self._clock())

    def _changed(self, old: BreakerState, new: BreakerState) -> None:
        if old is new:
            return
        for listener in list(self._listeners):
            try:
                listener(self.name, old, new)
            except Exception:  # an observer never breaks the breaker
                log.exception("modq: breaker %s listener failed", self.name)
