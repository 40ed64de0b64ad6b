"""Backpressure: a producer refuses work with ``Overloaded`` when its queue is past its bound.

Bounds count waiting *items* (``MODQ_MAX_QUEUE_DEPTH_{URGENT,NORMAL,BULK}``, 0 = unbounded):
a ``moderate`` message costs 1, a ``moderate_many`` message its item count. Depth is read in
the same unit. Each queue has a reserved-items counter in the broker's Redis; ``admit.lua``
reads it and the queue's lists and, in one atomic step, refuses the message or reserves its
cost, so any number of producer processes together never pass the bound (no cached depth, no
overshoot from admission). The cost travels in the message's headers and the worker that
receives the message releases it (``release_delivery``, on Celery's ``task_received``): depth
goes down as workers take work, as the queue's length did.

The counter heals itself: a queue whose lists are empty, with no reservation for
``RESERVE_GRACE_MS``, counts 0 (messages purged or parked before a worker received them), and
depth is never below the number of waiting messages (each holds an item at least). A retry or
a redelivered message was admitted once and releases nothing; a worker killed after it received
a message and before it ran it has already released it, so a redelivery can under-count by
that message's items until the queue next runs empty (docs/backpressure.md).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from redis.commands.core import Script
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from modq.broker.config import PUBLISH_RETRY_PAUSE_MAX_S
from modq.broker.queues import BrokerQueues
from modq.errors import BrokerUnavailable, Overloaded
from modq.schemas import Priority
from modq.settings import Settings, get_settings

log = logging.getLogger(__name__)

OVERLOADED_KEY = "overloaded"  # hash under metrics_key_prefix: queue -> refusals
RESERVED_PREFIX = "_modq.reserved."  # + queue: items admitted and not yet received
RESERVED_AT_SUFFIX = ".at_ms"  # + on the counter's key: the last reservation (Redis TIME)
RESERVE_GRACE_MS = 10_000  # longer than any admission-to-push gap (publish gives up in ~3 s)
CHARGED_QUEUE_HEADER = "modq_charged_queue"  # the queue whose counter a message was charged to
CHARGED_ITEMS_HEADER = "modq_charged_items"  # what it was charged: released when received
_ADMIT_LUA = (Path(__file__).parent / "admit.lua").read_text()
_RELEASE_LUA = """
local left = redis.call('DECRBY', KEYS[1], ARGV[1])
if left < 0 then redis.call('SET', KEYS[1], 0) left = 0 end
return left
"""


def bounds_from(settings: Settings) -> dict[str, int]:
    """Queue name -> bound on waiting items (0 = unbounded)."""
    return {
        Priority.URGENT.value: settings.max_queue_depth_urgent,
        Priority.NORMAL.value: settings.max_queue_depth_normal,
        Priority.BULK.value: settings.max_queue_depth_bulk,
    }


def charge_headers(queue: str, items: int) -> dict[str, Any]:
    """The headers that tell the receiving worker what to release (none when nothing was
    charged)."""
    return {CHARGED_QUEUE_HEADER: queue, CHARGED_ITEMS_HEADER: items} if items else {}


class Admission:
    """Admits or refuses messages per queue against its bound, atomically across processes."""

    def __init__(
        self,
        queues: BrokerQueues,
        bounds: Mapping[str, int],
        *,
        metrics_key_prefix: str,
        retry_s: float = 0.0,
    ) -> None:
        """``retry_s``: how long a check retries while the broker refuses connections (a
        Redis restart), as the publish after it does (``MODQ_PUBLISH_RETRY_S``)."""
        self.queues = queues
        self.retry_s = retry_s
        self.bounds = dict(bounds)
        self.overloaded_key = metrics_key_prefix + OVERLOADED_KEY
        self._admit = Script(None, _ADMIT_LUA.encode())  # type: ignore[arg-type]  # client per call
        self._release = Script(None, _RELEASE_LUA.encode())  # type: ignore[arg-type]

    def reserved_key(self, queue: str) -> str:
        """The Redis key of ``queue``'s reserved-items counter."""
        return f"{self.queues.key_prefix}{RESERVED_PREFIX}{queue}"

    def admit(self, queue: str, cost: int = 1) -> int:
        """Reserve ``cost`` items in ``queue`` and return what was charged (0 when the queue is
        unbounded); raise ``Overloaded`` (nothing reserved or sent) when they do not fit."""
        bound = self.bounds.get(queue, 0)
        if bound <= 0:
            return 0
        counter = self.reserved_key(queue)
        pauses = retry_pauses(self.retry_s)
        while True:
            try:
                admitted, depth = self._admit(
                    keys=[counter, counter + RESERVED_AT_SUFFIX, *self.queues.keys(queue)],
                    args=[cost, bound, RESERVE_GRACE_MS],
                    client=self.queues.redis,
                )
                break
            except (RedisConnectionError, RedisTimeoutError) as exc:
                pause_s = next(pauses, None)  # a restart: retry as the publish would
                if pause_s is None:
                    raise BrokerUnavailable(
                        f"cannot read the depth of queue {queue!r} for {self.retry_s:g} s, "
                        f"nothing was enqueued: {type(exc).__name__}"
                    ) from exc
                time.sleep(pause_s)
            except RedisError as exc:
                raise BrokerUnavailable(
                    f"cannot read the depth of queue {queue!r}, nothing was enqueued: "
                    f"{type(exc).__name__}"
                ) from exc
        if not admitted:
            self._count_refusal(queue)
            raise Overloaded(
                f"queue {queue!r} holds {depth} waiting items, its bound is {bound}: "
                f"{cost} more refused, nothing was enqueued; retry later",
                queue=queue,
                depth=int(depth),
                bound=bound,
                cost=cost,
            )
        return cost

    def release(self, queue: str, items: int) -> None:
        """Give back ``items`` of ``queue``'s reservation (a message was received, or it was
        never sent); a Redis error is logged, never raised (the counter heals itself)."""
        if items <= 0:
            return
        try:
            self._release(keys=[self.reserved_key(queue)], args=[items], client=self.queues.redis)
        except RedisError as exc:
            log.warning("modq: cannot release %d items of %s: %s", items, queue, exc)

    def depth(self, queue: str) -> int:
        """Items waiting in ``queue`` as admission counts them (reserved, at least its
        messages)."""
        try:
            reserved = int(self.queues.redis.get(self.reserved_key(queue)) or 0)
        except RedisError as exc:
            raise BrokerUnavailable(f"cannot read the depth of queue {queue!r}") from exc
        return max(reserved, self.queues.depths([queue])[queue])

    def forget(self) -> None:
        """Kept for callers of the cached version: admission reads Redis every time."""

    def _count_refusal(self, queue: str) -> None:
        try:
            self.queues.redis.hincrby(self.overloaded_key, queue, 1)
        except RedisError as exc:  # a metric must never hide the Overloaded error
            log.debug("modq: cannot count a refusal on %s: %s", queue, exc)


def retry_pauses(window_s: float) -> Iterator[float]:
    """The pauses between tries of a broker call retried through ``window_s`` (the publish
    retry policy's: 0, 0.5, 1, 1, ... s, adding up to ``window_s``)."""
    slept_s, pause_s = 0.0, 0.0
    while slept_s < window_s:
        yield pause_s
        slept_s += pause_s
        pause_s = min(pause_s + 0.5, PUBLISH_RETRY_PAUSE_MAX_S)


def release_delivery(app: Any, headers: Mapping[str, Any] | None) -> None:
    """A worker received a message: release what its producer charged, once (a retry or a
    redelivery was charged once, by its first delivery)."""
    if not headers:
        return
    queue, items = headers.get(CHARGED_QUEUE_HEADER), headers.get(CHARGED_ITEMS_HEADER)
    if not isinstance(queue, str) or not isinstance(items, int) or isinstance(items, bool):
        return
    if headers.get("retries") or headers.get("redelivered"):
        return
    admission = get_admission(app)
    if admission is not None:
        admission.release(queue, items)


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
                    metrics_key_prefix=settings.metrics_key_prefix,
                    retry_s=settings.publish_retry_s,
                )
        return _admissions[key]


def reset_admission() -> None:
    """Forget every admission control: the next job reads its app's settings again."""
    with _module_lock:
        _admissions.clear()
