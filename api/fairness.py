"""Fair admission between API keys: no key takes more than its share while others wait.

Each key may have at most ``per_key`` jobs queued or running at once (sync requests, and each
chunk of a sync batch); its next requests wait here, in the API, in their own FIFO line, until
one of its jobs is done, and are refused with 429 (``RateLimited``, never enqueued) when their
deadline passes first. A waiting request costs nothing but an asyncio future, and one key's line
never delays another key: their jobs are enqueued at once. So the queues between the API and the
workers hold at most ``per_key`` jobs of each key, and a small request waits behind at most that
many of a flood's, never behind the whole flood. (Before, one key within its rate limit took
another key's p50 from 143 ms to 5.4 s: every one of its requests was queued ahead.)

The slots are per API process (``modq api --workers N`` lets a key hold ``N * per_key``).
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import CollectorRegistry, Gauge

from modq.errors import RateLimited
from modq.settings import Settings

MIN_LEFT_S = 0.25  # a slot handed over with less of the deadline left is not used: 429


class KeySlots:
    """At most ``per_key`` slots held per key; waiters served first come, first served."""

    def __init__(self, per_key: int, *, retry_after_s: float = 1.0) -> None:
        if per_key < 1:
            raise ValueError(f"per_key must be >= 1, got {per_key}")
        self.per_key = per_key
        self._retry_after_s = retry_after_s
        self._held: Counter[str] = Counter()
        self._lines: dict[str, deque[asyncio.Future[None]]] = {}
        self.refused = 0  # requests refused after waiting out their deadline (all keys)

    @classmethod
    def for_settings(
        cls, settings: Settings, *, registry: CollectorRegistry | None = None
    ) -> KeySlots:
        """``api_key_max_in_flight`` slots per key; with ``registry``, two gauges on it:
        ``modq_api_fair_in_flight`` (jobs holding a slot) and ``modq_api_fair_waiting``
        (requests waiting for one), all keys together (no key id in a label)."""
        slots = cls(settings.api_key_max_in_flight, retry_after_s=settings.api_retry_after_s)
        if registry is not None:
            Gauge(
                "modq_api_fair_in_flight",
                "Sync jobs holding one of their key's slots (queued or running)",
                registry=registry,
            ).set_function(lambda: float(sum(slots._held.values())))
            Gauge(
                "modq_api_fair_waiting",
                "Sync requests waiting in the API for a slot of their key (past its share)",
                registry=registry,
            ).set_function(lambda: float(slots.waiting()))
        return slots

    def held(self, key_id: str) -> int:
        return self._held[key_id]

    def waiting(self, key_id: str | None = None) -> int:
        """Requests waiting for a slot (of ``key_id``, or of every key)."""
        lines = [self._lines.get(key_id, ())] if key_id is not None else self._lines.values()
        return sum(1 for line in lines for future in line if not future.done())

    async def acquire(self, key_id: str, wait_s: float) -> None:
        """Take one of ``key_id``'s slots, waiting up to ``wait_s``; RateLimited past it."""
        line = self._lines.get(key_id)
        if self._held[key_id] < self.per_key and not line:
            self._held[key_id] += 1
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        future: asyncio.Future[None] = loop.create_future()
        self._lines.setdefault(key_id, deque()).append(future)
        try:
            await asyncio.wait_for(future, max(wait_s, 0.0))
        except TimeoutError:
            raise self._refusal() from None
        except BaseException:  # cancelled (the client left): give back a slot handed over
            if future.done() and not future.cancelled():
                self.release(key_id)
            raise
        finally:
            self._prune(key_id)
        if deadline - loop.time() < MIN_LEFT_S:  # a slot, but no time left to use it
            self.release(key_id)
            raise self._refusal()

    def _refusal(self) -> RateLimited:
        self.refused += 1
        return RateLimited(
            f"this API key has {self.per_key} requests in progress, its share: the request "
            "waited for one of them to finish until its deadline",
            retry_after_s=self._retry_after_s,
            in_flight_limit=self.per_key,
        )

    def release(self, key_id: str) -> None:
        """Give a slot back: to ``key_id``'s next waiter, else to the pool."""
        line = self._lines.get(key_id)
        while line:
            future = line.popleft()
            if not future.done():
                future.set_result(None)  # the slot passes on: ``held`` is unchanged
                return
        self._held[key_id] -= 1
        if self._held[key_id] <= 0:
            del self._held[key_id]
        self._prune(key_id)

    def _prune(self, key_id: str) -> None:
        line = self._lines.get(key_id)
        if line is not None:
            while line and line[0].done():
                line.popleft()
            if not line:
                del self._lines[key_id]

    @asynccontextmanager
    async def slot(self, key_id: str, wait_s: float) -> AsyncIterator[None]:
        """``async with slots.slot(key, wait_s):`` one job of ``key`` in progress."""
        await self.acquire(key_id, wait_s)
        try:
            yield
        finally:
            self.release(key_id)
