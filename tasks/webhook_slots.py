"""Bounded concurrency per receiver host for webhook deliveries (one consumer process).

``HostSlots(limit)`` lends at most ``limit`` slots per host at once; ``try_acquire`` never
blocks: a delivery that finds its host full is put back on the ``webhooks`` queue for later
instead of holding a consumer thread, so one receiver that hangs cannot take every thread of
the consumer, and the deliveries to other hosts go on.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager


class HostSlots:
    """Thread-safe counters of deliveries in progress, per host."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        self.limit = limit
        self._busy: Counter[str] = Counter()
        self._lock = threading.Lock()

    def try_acquire(self, host: str) -> bool:
        """Take a slot for ``host`` if one is free (True), else False at once."""
        with self._lock:
            if self._busy[host] >= self.limit:
                return False
            self._busy[host] += 1
            return True

    def release(self, host: str) -> None:
        with self._lock:
            self._busy[host] -= 1
            if self._busy[host] <= 0:
                del self._busy[host]

    def busy(self, host: str) -> int:
        with self._lock:
            return self._busy[host]

    @contextmanager
    def holding(self, host: str) -> Iterator[bool]:
        """``with slots.holding(host) as got:`` — ``got`` is whether a slot was taken (and is
        released on exit)."""
        got = self.try_acquire(host)
        try:
            yield got
        finally:
            if got:
                self.release(host)
