"""Enqueue-to-start wait of every job, kept as a histogram in the broker's Redis.

Workers add each job's wait when its task starts (Celery's ``task_prerun``; one pipelined call
of three commands); ``modq metrics serve`` reads the buckets at scrape time. Redis holds the
sums, so every worker process on every host adds to one histogram and no process needs its own
metrics port. The worker imports this module through ``celeryconfig.imports``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Mapping
from typing import Any

from celery.signals import task_prerun
from redis.exceptions import RedisError

from modq.broker.queues import QueueReader, queue_reader
from modq.errors import BrokerUnavailable
from modq.settings import get_settings

log = logging.getLogger(__name__)

# Upper bounds in seconds: urgent jobs should sit in the low buckets, bulk may wait minutes.
WAIT_BUCKETS_S: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0
)  # fmt: skip
INF = "+Inf"
WAIT_KEY = "wait_s:"  # + queue: hash of bucket upper bound -> count, plus "sum" and "count"
MODQ_TASKS = frozenset({"modq.moderate", "modq.moderate_many"})


def wait_key(prefix: str, queue: str) -> str:
    return f"{prefix}{WAIT_KEY}{queue}"


def bucket_for(wait_s: float) -> str:
    """The (non-cumulative) bucket a wait falls in, by its upper bound."""
    for bound in WAIT_BUCKETS_S:
        if wait_s <= bound:
            return repr(bound)
    return INF


def record_wait(queues: QueueReader, prefix: str, queue: str, wait_s: float) -> None:
    """Add one job's wait to ``queue``'s histogram."""
    wait_s = max(0.0, wait_s)  # clocks of two hosts may disagree by a little
    key = wait_key(prefix, queue)
    with queues.redis.pipeline(transaction=False) as pipe:
        pipe.hincrby(key, bucket_for(wait_s), 1)
        pipe.hincrby(key, "count", 1)
        pipe.hincrbyfloat(key, "sum", wait_s)
        pipe.execute()


def read_waits(
    queues: QueueReader, prefix: str, names: Iterable[str]
) -> dict[str, tuple[list[tuple[str, float]], float]]:
    """Per queue: cumulative buckets ``[(le, count), ..., ("+Inf", total)]`` and the sum."""
    names = list(names)
    with queues.redis.pipeline(transaction=False) as pipe:
        for queue in names:
            pipe.hgetall(wait_key(prefix, queue))
        raw = pipe.execute()
    return {queue: cumulative(fields) for queue, fields in zip(names, raw, strict=True)}


def cumulative(fields: Mapping[Any, Any]) -> tuple[list[tuple[str, float]], float]:
    """Cumulative buckets and sum from one raw histogram hash."""
    counts = {text(k): float(v) for k, v in fields.items()}
    running = 0.0
    buckets: list[tuple[str, float]] = []
    for bound in WAIT_BUCKETS_S:
        running += counts.get(repr(bound), 0.0)
        buckets.append((repr(bound), running))
    buckets.append((INF, running + counts.get(INF, 0.0)))
    return buckets, counts.get("sum", 0.0)


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


_queues: QueueReader | None = None
_disabled = False


def _worker_queues(app: Any) -> QueueReader | None:
    global _queues, _disabled
    if _queues is None and not _disabled:
        try:
            _queues = queue_reader(app)
        except BrokerUnavailable as exc:
            log.warning("modq: wait times not recorded: %s", exc)
            _disabled = True
    return _queues


@task_prerun.connect
def _on_task_start(sender: Any = None, kwargs: Mapping[str, Any] | None = None, **_: Any) -> None:
    """Record the job's wait; a metrics failure never fails the job."""
    settings = get_settings()
    if sender is None or sender.name not in MODQ_TASKS or not settings.record_wait_time:
        return
    if sender.request.retries:  # a retry's wait includes its deliberate backoff
        return
    enqueued_at_s = (kwargs or {}).get("enqueued_at_s")
    if not isinstance(enqueued_at_s, int | float) or not math.isfinite(enqueued_at_s):
        return
    delivery = sender.request.delivery_info or {}
    queue = delivery.get("routing_key") or (kwargs or {}).get("priority")
    queues = _worker_queues(sender.app)
    if not queue or queues is None:
        return
    try:
        record_wait(queues, settings.metrics_key_prefix, str(queue), time.time() - enqueued_at_s)
    except RedisError as exc:
        log.debug("modq: wait time of a %s job not recorded: %s", queue, exc)
