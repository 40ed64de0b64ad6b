"""The modq rows: per-item, bulk, cache hits, urgency and memory, through a real worker.

The parent process talks to the modq worker's private Redis (``MODQ_REDIS_URL`` is set before
``tasks`` is first imported); producers are spawned processes (``bench.producers``).
"""

from __future__ import annotations

import math
import statistics
import time
import uuid
from typing import Any

from bench.producers import MODQ_MANY, MODQ_ONE, drive
from bench.services import ModqWorker

URGENT_TIMEOUT_S = 120.0


def _ids(tag: str, count: int) -> list[str]:
    return [f"{tag}-{i}" for i in range(count)]


def per_item(texts: list[str], *, producers: int) -> float:
    """``moderate.delay()`` one text per message from ``producers`` processes: texts/s."""
    tag = uuid.uuid4().hex[:8]
    jobs = [
        {"content_id": cid, "content": text, "priority": "normal"}
        for cid, text in zip(_ids(tag, len(texts)), texts, strict=True)
    ]
    return drive(MODQ_ONE, jobs, texts=len(texts), producers=producers)


def bulk_jobs(texts: list[str], per_message: int, priority: str = "bulk") -> list[dict[str, Any]]:
    tag = uuid.uuid4().hex[:8]
    items = [
        {"content_id": cid, "content": text}
        for cid, text in zip(_ids(tag, len(texts)), texts, strict=True)
    ]
    return [
        {"items": items[start : start + per_message], "priority": priority}
        for start in range(0, len(items), per_message)
    ]


def repeat_bulk(texts: list[str], count: int, *, per_message: int, producers: int) -> float:
    """``count`` jobs cycling through ``texts`` (cache hits once each text is in), as
    ``moderate_many()`` with ``per_message`` items per message: jobs/s."""
    repeated = (texts * (count // len(texts) + 1))[:count]
    return bulk(repeated, per_message=per_message, producers=producers)


def bulk(texts: list[str], *, per_message: int, producers: int) -> float:
    """``moderate_many()`` with ``per_message`` items per message: texts/s."""
    jobs = bulk_jobs(texts, per_message)
    return drive(MODQ_MANY, jobs, texts=len(texts), producers=producers)


def clear_cache(redis_url: str, prefix: str) -> int:
    """Delete the worker's cache entries (its own prefix, on its private Redis)."""
    from redis import Redis

    client = Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start : start + 1000])
    client.close()
    return len(keys)


def _queue_depth(redis_url: str, queue: str) -> int:
    from redis import Redis

    client = Redis.from_url(redis_url)
    try:
        return int(client.llen(queue))
    finally:
        client.close()


def _purge(redis_url: str, queue: str) -> None:
    from redis import Redis

    client = Redis.from_url(redis_url)
    try:
        client.delete(queue, *client.keys(f"{queue}\x06\x16*"))  # kombu's priority sub-lists
    finally:
        client.close()


def urgent_latencies_ms(texts: list[str], tag: str) -> list[float]:
    """Send urgent jobs one at a time (each waits for its result): latency of each, ms."""
    from tasks import moderate

    latencies = []
    for index, text in enumerate(texts):
        started = time.perf_counter()
        moderate.delay(
            content_id=f"{tag}-{index}", content=f"{text} [{tag}]", priority="urgent"
        ).get(timeout=URGENT_TIMEOUT_S)
        latencies.append((time.perf_counter() - started) * 1000.0)
    return latencies


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100.0 * len(ordered))))
    return ordered[rank - 1]


def urgency(
    worker: ModqWorker,
    redis_url: str,
    urgent_texts: list[str],
    backlog_texts: list[str],
    *,
    backlog_per_message: int,
    drain: bool = True,
) -> dict[str, Any]:
    """Urgent latency on an idle queue, then with ``backlog_texts`` queued as bulk.

    With ``drain`` the backlog is left to drain afterwards (its results are awaited): the
    worker has then done len(backlog) + 2 x len(urgent) jobs. Without, what is still queued
    is purged (the caller stops the workers next).
    """
    from tasks import moderate_many

    idle = urgent_latencies_ms(urgent_texts, f"idle-{uuid.uuid4().hex[:6]}")
    before = worker.stats().get("texts_scored", 0)
    backlog = [moderate_many.delay(**job) for job in bulk_jobs(backlog_texts, backlog_per_message)]
    deadline = time.monotonic() + 60
    while worker.stats().get("texts_scored", 0) == before:  # the worker has started on it
        if time.monotonic() > deadline:
            raise RuntimeError("the worker never started on the backlog")
    depth_at_start = _queue_depth(redis_url, "bulk")
    busy = urgent_latencies_ms(urgent_texts, f"busy-{uuid.uuid4().hex[:6]}")
    depth_at_end = _queue_depth(redis_url, "bulk")
    drain_s = None
    if drain:
        drain_started = time.perf_counter()
        for result in backlog:
            result.get(timeout=1800)
        drain_s = time.perf_counter() - drain_started
    else:
        _purge(redis_url, "bulk")
    return {
        "idle_ms": idle,
        "busy_ms": busy,
        "idle_p50_ms": statistics.median(idle),
        "idle_p99_ms": percentile(idle, 99),
        "busy_p50_ms": statistics.median(busy),
        "busy_p99_ms": percentile(busy, 99),
        "backlog_items": len(backlog_texts),
        "backlog_per_message": backlog_per_message,
        "bulk_messages_queued_at_first_urgent": depth_at_start,
        "bulk_messages_queued_at_last_urgent": depth_at_end,
        "backlog_drain_after_urgent_s": drain_s,
    }
