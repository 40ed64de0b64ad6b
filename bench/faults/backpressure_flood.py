"""Fault scenario: 4 producer processes flood the bulk queue (bound 500 items) with
``moderate_many`` and single jobs while one worker drains it.

Counted from the outside: the items the producers were told were accepted, the rows the
worker stored (distinct and duplicated), the peak of items waiting in the queue (decoded from
the queue's lists every few ms, not read from modq's own counter) and the overshoot past the
bound. A refusal (``Overloaded``) is the documented answer, not a caller error; anything else
a producer raises is.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.faults import FaultRow

REPO = Path(__file__).resolve().parents[2]
PRODUCERS = 4
BOUND = 500

# One producer: waits for the start signal, sends for ``seconds``; writes the content ids of
# every accepted item to its file and prints "accepted refused errors".
PRODUCER = r"""
import os, random, sys, time
from redis import Redis
from modq import client
from modq.errors import Overloaded
name, seconds, out_path = sys.argv[1], float(sys.argv[2]), sys.argv[3]
r = Redis.from_url(os.environ["MODQ_REDIS_URL"])
r.rpush("bench.ready", name)
while not r.exists("bench.go"):
    time.sleep(0.001)
accepted = refused = errors = n = 0
deadline = time.monotonic() + seconds
with open(out_path, "w") as out:
    while time.monotonic() < deadline:
        size = random.choice((1, 10, 100))
        n += 1
        items = [{"content_id": f"{name}-{n}-{i}", "content": f"flood {i}"} for i in range(size)]
        try:
            if size == 1:
                client.moderate.delay(priority="bulk", **items[0])
            else:
                client.moderate_many.delay(items=items)
        except Overloaded:
            refused += 1
            time.sleep(0.005)
            continue
        except Exception as exc:
            errors += 1
            print(f"error: {type(exc).__name__}", file=sys.stderr)
            continue
        accepted += size
        out.write("\n".join(item["content_id"] for item in items) + "\n")
print(accepted, refused, errors)
"""


def items_waiting(redis: object, queue: str = "bulk") -> int:
    """Items in ``queue``'s lists, by decoding each waiting message."""
    total = 0
    for key in redis.scan_iter(match=f"{queue}*", count=100):  # type: ignore[attr-defined]
        if redis.type(key) != b"list":  # type: ignore[attr-defined]
            continue
        for raw in redis.lrange(key, 0, -1):  # type: ignore[attr-defined]
            try:
                kwargs = json.loads(base64.b64decode(json.loads(raw)["body"]))[1]
            except (ValueError, KeyError, IndexError):
                continue
            total += len(kwargs["items"]) if "items" in kwargs else 1
    return total


def _wait_ready(url: str, worker: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    """Until the worker answers a ping on its broker (it has consumers on its queues)."""
    from celery import Celery

    probe = Celery("flood-probe", broker=url, set_as_current=False)
    deadline = time.monotonic() + timeout_s
    try:
        while not probe.control.ping(timeout=1.0):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start: {log.read_text()[-2000:]}")
    finally:
        probe.close()


def run(workdir: Path, *, quick: bool) -> FaultRow:
    """Flood for 5 s (quick) or 30 s with a worker draining; count what was accepted, stored,
    lost and duplicated, and the peak of items waiting against the bound."""
    from redis import Redis
    from sqlalchemy import create_engine, text

    import migrations
    from cli.services import private_redis, start_worker, stop_worker

    seconds = 5.0 if quick else 30.0
    database = f"sqlite:///{workdir / 'flood.db'}"
    migrations.upgrade(database)
    started = time.monotonic()
    with private_redis(appendonly=True) as url:
        env = {
            **os.environ,
            "MODQ_REDIS_URL": url,
            "MODQ_DATABASE_URL": database,
            "MODQ_MAX_QUEUE_DEPTH_BULK": str(BOUND),
            "PYTHONPATH": str(REPO),
        }
        env.pop("MODQ_BROKER_URL", None)
        env.pop("MODQ_RESULT_BACKEND_URL", None)
        redis = Redis.from_url(url)
        log = workdir / "worker.log"
        worker = start_worker(
            {k: v for k, v in env.items() if k.startswith(("MODQ_", "PYTHON"))},
            threads=4,
            log_path=log,
        )
        peak = 0
        try:
            _wait_ready(url, worker, log, 180)
            producers = [
                subprocess.Popen(
                    [sys.executable, "-c", PRODUCER, f"p{n}", str(seconds), workdir / f"p{n}"],
                    env=env,
                    cwd=REPO,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )
                for n in range(PRODUCERS)
            ]
            deadline = time.monotonic() + 120
            while redis.llen("bench.ready") < PRODUCERS:
                if time.monotonic() > deadline:
                    raise RuntimeError("producers did not start")
                time.sleep(0.05)
            redis.set("bench.go", 1)
            sampling = True

            def sample() -> None:
                nonlocal peak
                while sampling:
                    peak = max(peak, items_waiting(redis))
                    time.sleep(0.005)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            outputs = [p.communicate(timeout=seconds + 120) for p in producers]
            sampling = False
            sampler.join()
            counts = [tuple(int(x) for x in out.split()[-3:]) for out, _ in outputs]
            accepted_ids = set()
            for n in range(PRODUCERS):
                accepted_ids.update((workdir / f"p{n}").read_text().split())
            engine = create_engine(database)
            query = text("SELECT content_id, COUNT(*) FROM moderation_results GROUP BY content_id")
            rows: dict[str, int] = {}
            settle = time.monotonic() + (120 if quick else 600)
            while time.monotonic() < settle:
                with engine.connect() as connection:
                    rows = {cid: int(c) for cid, c in connection.execute(query)}
                if accepted_ids <= rows.keys():
                    break
                time.sleep(0.5)
            engine.dispose()
        finally:
            stop_worker(worker)
    sent = len(accepted_ids)
    stored = len(accepted_ids & rows.keys())
    return FaultRow(
        scenario="backpressure_flood",
        broker="redis (AOF)",
        sent=sent,
        stored=stored,
        lost=sent - stored,
        duplicated=sum(c - 1 for c in rows.values() if c > 1),
        caller_errors=sum(c[2] for c in counts),
        seconds=round(time.monotonic() - started, 1),
        notes=(
            f"{PRODUCERS} producers, bound {BOUND} items: peak {peak} waiting, "
            f"overshoot {max(0, peak - BOUND)}; {sum(c[1] for c in counts)} refusals (Overloaded)"
        ),
        extra={"bound": BOUND, "peak_waiting_items": peak, "overshoot": max(0, peak - BOUND)},
    )


if __name__ == "__main__":  # python -m bench.faults.backpressure_flood [--full]
    import tempfile

    print(run(Path(tempfile.mkdtemp(prefix="modq-flood-")), quick="--full" not in sys.argv))
