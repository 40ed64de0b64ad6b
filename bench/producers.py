"""Producer processes that send jobs at saturation and wait for every result.

Each producer is a spawned process (its own Celery client, its own connections): it imports
its client, says ready, waits for "go", sends all of its jobs, then collects every result. The
figure is texts over the wall time from "go" to the last result in.
"""

from __future__ import annotations

import multiprocessing
import time
from multiprocessing.connection import Connection
from typing import Any

RESULT_TIMEOUT_S = 900.0

# kinds of job a producer can send
MODQ_ONE = "modq-one"  # tasks.moderate.delay(content_id, content, priority)
MODQ_MANY = "modq-many"  # tasks.moderate_many.delay(items, priority)
SEED_ONE = "seed-one"  # bench.seed_app score_one(text), on its own Redis


def _sender(kind: str, redis_url: str | None) -> Any:
    if kind == MODQ_ONE:
        from tasks import moderate

        return lambda job: moderate.delay(**job)
    if kind == MODQ_MANY:
        from tasks import moderate_many

        return lambda job: moderate_many.delay(**job)
    if kind == SEED_ONE:
        from bench.seed_app import TASK, make_app

        app = make_app(str(redis_url))
        return lambda job: app.send_task(TASK, args=[job])
    raise ValueError(f"unknown job kind {kind!r}")


def _produce(link: Connection, kind: str, redis_url: str | None, jobs: list[Any]) -> None:
    send = _sender(kind, redis_url)
    link.send("ready")
    link.recv()  # go
    pending = [send(job) for job in jobs]
    for result in pending:
        result.get(timeout=RESULT_TIMEOUT_S)
    link.send("done")


def drive(
    kind: str, jobs: list[Any], *, texts: int, producers: int, redis_url: str | None = None
) -> float:
    """Texts/s for ``jobs`` split across ``producers`` processes (``texts`` they carry)."""
    context = multiprocessing.get_context("spawn")
    links: list[Connection] = []
    children = []
    for index in range(producers):
        parent, child = context.Pipe()
        process = context.Process(
            target=_produce,
            args=(child, kind, redis_url, jobs[index::producers]),
            daemon=True,
        )
        process.start()
        links.append(parent)
        children.append(process)
    try:
        for link in links:
            if not link.poll(120) or link.recv() != "ready":
                raise RuntimeError("a producer did not start")
        started = time.perf_counter()
        for link in links:
            link.send("go")
        for link, process in zip(links, children, strict=True):
            while not link.poll(1.0):
                if not process.is_alive():
                    raise RuntimeError(f"a producer died (exit {process.exitcode})")
            link.recv()
        return texts / (time.perf_counter() - started)
    finally:
        for process in children:
            process.join(10)
            if process.is_alive():
                process.kill()
