"""The micro-batcher's watchdog (``gpu_worker.batcher``): which model calls are in flight, and
which ran past ``call_timeout_s``.

A lane registers each model call (``started``) and unregisters it when it returns (``ended``:
True if the watchdog had given up on it meanwhile, so the late answer is dropped). The
watchdog's thread marks every call running past the timeout abandoned, keeps it among the
stuck calls until its thread returns (``hung_now``), and hands it to ``on_hung`` (the batcher
fails its callers and gives its lane to a fresh thread). It stops once closed with no call in
flight.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class RunningCall:
    """A batch in a model call, as the watchdog sees it."""

    batch: list[Any]  # the batcher's items
    started_s: float  # time.monotonic()
    urgent_lane: bool
    thread: threading.Thread
    abandoned: bool = False  # the watchdog failed its callers: a late answer is dropped


class Watchdog:
    """Watches model calls for ``timeout_s``; ``on_hung(call, timeout_s)`` gets each that
    runs past it, in the watchdog's own thread."""

    def __init__(self, timeout_s: float, on_hung: Callable[[RunningCall, float], None]) -> None:
        self.timeout_s, self.on_hung = timeout_s, on_hung
        self._calls: list[RunningCall] = []  # model calls in flight (guarded by _watch)
        self._stuck: list[RunningCall] = []  # hung calls whose thread has not returned yet
        self._watch = threading.Condition()
        self._closed = False
        threading.Thread(target=self._run, name="modq-batcher-watchdog", daemon=True).start()

    def started(self, batch: list[Any], urgent_lane: bool) -> RunningCall:
        call = RunningCall(batch, time.monotonic(), urgent_lane, threading.current_thread())
        with self._watch:
            self._calls.append(call)
            self._watch.notify_all()
        return call

    def ended(self, call: RunningCall) -> bool:
        """The call returned: True if the watchdog had given up on it."""
        with self._watch:
            if call.abandoned:
                self._stuck.remove(call)
                return True
            self._calls.remove(call)
            return False

    def hung_now(self) -> list[float]:
        """How long (s) each model call that hung and has not returned yet has been running."""
        now = time.monotonic()
        with self._watch:
            return [now - call.started_s for call in self._stuck]

    def close(self) -> None:
        """Stop once no call is left in flight."""
        with self._watch:
            self._closed = True
            self._watch.notify_all()

    def _run(self) -> None:
        timeout_s = self.timeout_s
        while True:
            with self._watch:
                while True:
                    now = time.monotonic()
                    overdue = [c for c in self._calls if now - c.started_s >= timeout_s]
                    if overdue:
                        break
                    if self._closed and not self._calls:
                        return
                    first = min((c.started_s for c in self._calls), default=None)
                    self._watch.wait(None if first is None else first + timeout_s - now)
                for call in overdue:
                    call.abandoned = True
                    self._calls.remove(call)
                    self._stuck.append(call)
            for call in overdue:
                self.on_hung(call, timeout_s)
