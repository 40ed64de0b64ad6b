"""Fault scenario: the broker's redis-server is killed (SIGKILL) under load and started again
on the same port and data while producers send and callers wait in ``.get()``.

``run`` returns two rows (a list): Redis with AOF (``appendonly yes``, ``everysec``), where
nothing may be lost, and Redis with no persistence at all, where every job queued at the
kill is gone (the row shows it: lost >= queued > 0). The worker is stopped (SIGSTOP) for
``BACKLOG_PAUSE_S`` just before the kill, so a backlog is always queued behind it; a worker
that keeps up with the producers would leave nothing queued to lose. A producer refused with
``BrokerUnavailable`` while Redis is down, or within ``MODQ_PUBLISH_RETRY_S`` after it is
back, is inside the documented window (docs/redis.md) and re-sends; every other caller
error (a ``.get()`` that raised, or that timed out on a job that was never answered) is
counted in ``caller_errors``.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

from bench.faults import FaultRow
from bench.faults import load as callers
from modq.contract import QUEUES

REPO = Path(__file__).resolve().parents[2]
BROKER_NAMES = {"aof": "redis (AOF)", "none": "redis (volatile)", "rdb": "redis (RDB)"}


@dataclass(frozen=True)
class Load:
    jobs: int
    producers: int
    send_s: float  # the producers spread their jobs over this long
    down_s: float  # Redis stays down this long
    wait_s: float  # callers wait this long after the sending ends


QUICK = Load(jobs=300, producers=3, send_s=6, down_s=3, wait_s=45)
FULL = Load(jobs=2_000, producers=4, send_s=25, down_s=10, wait_s=90)
VISIBILITY_TIMEOUT_S = 10  # jobs in flight at the kill come back this long after it
BACKLOG_PAUSE_S = 1.5  # the worker is stopped this long before the kill: a backlog queues
BACKLOG_WAIT_S = 5.0  # and at most this much longer while the queues are still empty


def worker_env(redis_url: str, database_url: str) -> dict[str, str]:
    """A worker of the scenario's own: its broker, its database, a short visibility timeout."""
    model_dir = os.environ.get("MODQ_MODEL_DIR", str(REPO / "models" / "current"))
    return {
        "MODQ_REDIS_URL": redis_url,
        "MODQ_DATABASE_URL": database_url,
        "MODQ_MODEL_DIR": model_dir,
        "MODQ_VISIBILITY_TIMEOUT_S": str(VISIBILITY_TIMEOUT_S),
        "MODQ_UNACKED_RESTORE_INTERVAL_S": "1",
        "MODQ_MAX_WAIT_MS": "5",
        "MODQ_ALLOW_VOLATILE_BROKER": "1",  # the volatile row runs on one on purpose
        "MODQ_WORKER_METRICS_PORT": "0",
        "PYTHONUNBUFFERED": "1",
    }


def queued_jobs(redis_url: str) -> int:
    """Jobs waiting in the queues' lists (not those a worker has fetched)."""
    from redis import Redis

    from bench.faults.backpressure_flood import items_waiting

    client = Redis.from_url(redis_url)
    try:
        return sum(items_waiting(client, queue) for queue in QUEUES)
    finally:
        client.close()


def wait_for_rows(database_url: str, prefix: str, count: int, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while True:
        stored = len(callers.stored_rows(database_url, prefix)[0])
        if stored >= count or time.monotonic() > deadline:
            return stored
        time.sleep(0.1)


def scenario(workdir: Path, persistence: str, load: Load) -> FaultRow:
    """One restart under ``load`` on a Redis with ``persistence`` (aof, rdb or none)."""
    import migrations
    from cli.services import RedisServer, start_worker, stop_worker
    from modq.settings import get_settings

    started = time.monotonic()
    server = RedisServer(persistence=persistence, folder=workdir / f"redis-{persistence}")
    server.folder.mkdir(parents=True, exist_ok=True)
    database_url = f"sqlite:///{workdir / f'results-{persistence}.db'}"
    migrations.upgrade(database_url)
    prefix = f"restart-{persistence}-{uuid.uuid4().hex[:6]}"
    out = workdir / f"load-{persistence}.json"
    server.start()
    worker = start_worker(
        worker_env(server.url, database_url),
        threads=8,
        log_path=workdir / f"worker-{persistence}.log",
    )
    try:
        load_process = callers.start(
            out,
            {"MODQ_REDIS_URL": server.url},
            prefix=prefix,
            jobs=load.jobs,
            producers=load.producers,
            send_s=load.send_s,
            wait_s=load.wait_s,
        )
        # kill once the worker is serving and a backlog is queued behind it: the worker is
        # stopped (SIGSTOP, a busy worker) for a moment, so the kill finds jobs queued
        wait_for_rows(database_url, prefix, max(5, load.jobs // 10), timeout_s=180)
        os.killpg(worker.pid, signal.SIGSTOP)
        try:
            time.sleep(BACKLOG_PAUSE_S)
            queued, deadline = queued_jobs(server.url), time.monotonic() + BACKLOG_WAIT_S
            while queued == 0 and time.monotonic() < deadline:  # the producers still send
                time.sleep(0.1)
                queued = queued_jobs(server.url)
            killed_at = time.time()
            server.kill()
        finally:
            os.killpg(worker.pid, signal.SIGCONT)
        time.sleep(load.down_s)  # the outage itself
        server.start()
        back_at = time.time()
        load_process.wait(load.send_s + load.wait_s + 120)
        report = callers.read(out)
        # the last jobs may be stored just after their callers gave up
        wait_for_rows(database_url, prefix, len(report.accepted), timeout_s=15)
    finally:
        stop_worker(worker)
        server.stop()
    return callers.restart_row(
        report,
        database_url,
        prefix,
        scenario="redis restart",
        broker=BROKER_NAMES[persistence],
        down_at=killed_at,
        window_end=back_at + get_settings().publish_retry_s + 2.0,
        started=started,
        outage=f"SIGKILL with {queued} jobs queued, down {load.down_s:.0f} s",
        extra={"queued_at_kill": queued},
    )


def run(workdir: Path, *, quick: bool) -> list[FaultRow]:
    """Two rows: Redis with AOF, then Redis with no persistence."""
    load = QUICK if quick else FULL
    # the volatile row's lost jobs never come back: its callers give up after 30 s, not 90
    volatile = replace(load, wait_s=min(load.wait_s, 30.0))
    return [scenario(workdir, "aof", load), scenario(workdir, "none", volatile)]


if __name__ == "__main__":
    import argparse
    import json
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m bench.faults.redis_restart")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--persistence", choices=sorted(BROKER_NAMES), default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="modq-fault-redis-") as folder:
        chosen = QUICK if args.quick else FULL
        rows = (
            [scenario(Path(folder), args.persistence, chosen)]
            if args.persistence
            else run(Path(folder), quick=args.quick)
        )
        for row in rows:
            print(json.dumps(row.as_dict()))
