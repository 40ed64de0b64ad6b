"""Backpressure: a producer refuses work with ``Overloaded`` when its queue is past its bound.

Bounds count waiting messages (``MODQ_MAX_QUEUE_DEPTH_{URGENT,NORMAL,BULK}``, 0 = unbounded).
A new message is charged its size in jobs: 1 for ``moderate``, its item count for
``moderate_many``, so a 500-item message is refused by a queue with fewer than 500 free places.
Each process reads a queue's depth (one pipelined LLEN) at most every
``queue_depth_cache_ms`` and counts its own admissions in between, so a hot producer does not
hammer Redis; several producers together may overshoot a bound by what they send in that time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from modq.broker.queues import BrokerQueues
from modq.errors import BrokerUnavailable, Overloaded
from modq.schemas import Priority
from modq.settings import Settings, get_settings

log = logging.getLogger(__name__)

OVERLOADED_KEY = "overloaded"  # hash under metrics_key_prefix: queue -> refusals


def bounds_from(settings: Settings) -> dict[str, int]:
    """Queue name -> bound on waiting messages (0 = unbounded)."""
    return {
        Priority.URGENT.value: settings.max_queue_depth_urgent,
        Priority.NORMAL.value: settings.max_queue_depth_normal,
        Priority.BULK.value: settings.max_queue_depth_bulk,
    }


@dataclass(slots=True)
class _Reading:
    depth: int
    read_at_s: float


class Admission:
    """Admits or refuses messages per queue against its bound, with a short-lived depth cache."""

    def __init__(
        self,
        queues: BrokerQueues,
        bounds: Mapping[str, int],
        *,
        cache_ms: float,
        metrics_key_prefix: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.queues = queues
        self.bounds = dict(bounds)
        self.cache_s = cache_ms / 1000.0
        self.overloaded_key = metrics_key_prefix + OVERLOADED_KEY
        self._clock = clock
        self._readings: dict[str, _Reading] = {}
        self._lock = threading.Lock()

    def admit(self, queue: str, cost: int = 1) -> None:
        """Return if ``cost`` jobs fit in ``queue``; raise ``Overloaded`` (nothing sent) if not."""
        bound = self.bounds.get(queue, 0)
        if bound <= 0:
            return
        with self._lock:
            depth = self._depth(queue)
            if depth + cost > bound:
                self._count_refusal(queue)
                raise Overloaded(
                    f"queue {queue!r} holds {depth} waiting messages, its bound is {bound}: "
                    f"{cost} more refused, nothing was enqueued; retry later",
                    queue=queue,
                    depth=depth,
                    bound=bound,
                    cost=cost,
                )
            # one more message in the list until the next real reading
            self._readings[queue].depth += 1

    def forget(self) -> None:
        """Drop cached depths: the next admission reads Redis."""
        with self._lock:
            self._readings.clear()

    def _depth(self, queue: str) -> int:
        now_s = self._clock()
        reading = self._readings.get(queue)
        if reading is None or now_s - reading.read_at_s >= self.cache_s:
            try:
                depth = self.queues.depths([queue])[queue]
            except RedisError as exc:
                raise BrokerUnavailable(
                    f"cannot read the depth of queue {queue!r}, nothing was enqueued: {exc}"
                ) from exc
            reading = self._readings[queue] = _Reading(depth, now_s)
        return reading.depth

    def _count_refusal(self, queue: str) -> None:
        try:
            self.queues.redis.hincrby(self.overloaded_key, queue, 1)
        except RedisError as exc:  # a metric must never hide the Overloaded error
            log.debug("modq: cannot count a refusal on %s: %s", queue, exc)


_admissions: dict[tuple[int, str], Admission | None] = {}
_admissions_settings: Settings | None = None
_module_lock = threading.Lock()


def get_admission(app: Any) -> Admission | None:
    """This process's admission control for ``app``'s broker; None where the broker is not Redis
    (no depth to read: bounds are not enforced, said once in the log). Rebuilt when the
    settings object or the app's broker URL changes."""
    global _admissions_settings
    settings = get_settings()
    with _module_lock:
        if _admissions_settings is not settings:
            _admissions.clear()
            _admissions_settings = settings
        key = (id(settings), str(app.conf.broker_url))
        if key not in _admissions:
            try:
                queues = BrokerQueues.from_app(app)
            except BrokerUnavailable as exc:
                log.warning("modq: queue bounds not enforced: %s", exc)
                _admissions[key] = None
            else:
                _admissions[key] = Admission(
                    queues,
                    bounds_from(settings),
                    cache_ms=settings.queue_depth_cache_ms,
                    metrics_key_prefix=settings.metrics_key_prefix,
                )
        return _admissions[key]


def reset_admission() -> None:
    """Forget every admission control: the next job reads its app's settings again."""
    with _module_lock:
        _admissions.clear()
