"""Fault scenario: a worker is killed with SIGKILL (its whole process group: no warm shutdown,
no acks) mid-load, and a fresh one takes over, while producers send and callers wait.

As in tests/tasks/test_redelivery.py: the jobs the dead worker held unacknowledged come back
after the visibility timeout and are stored exactly once (result rows are idempotent). The
broker is a Redis with AOF. ``quick`` kills once; the full run kills three times, each
under its own load.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from bench.faults import FaultRow
from bench.faults import load as callers
from bench.faults.redis_restart import Load, wait_for_rows, worker_env

QUICK = Load(jobs=300, producers=3, send_s=5, down_s=1, wait_s=45)
FULL = Load(jobs=2_000, producers=4, send_s=20, down_s=1, wait_s=90)
HOLDING_WAIT_S = 10.0  # the longest wait for a moment when the worker holds jobs


def unacked(redis_url: str) -> int:
    from redis import Redis

    client = Redis.from_url(redis_url)
    try:
        return int(client.hlen("unacked"))
    finally:
        client.close()


def wait_until_holding(redis_url: str, *, timeout_s: float) -> None:
    """Return once a worker holds fetched, unacknowledged jobs (or after ``timeout_s``): a
    worker that keeps up with the producers holds none most of the time, and a kill then would
    test nothing."""
    deadline = time.monotonic() + timeout_s
    while unacked(redis_url) == 0 and time.monotonic() < deadline:
        time.sleep(0.002)


def one_round(workdir: Path, redis_url: str, database_url: str, load: Load, n: int) -> dict:
    """One load with one SIGKILL; what the callers saw and the rows stored."""
    import os
    import signal

    from cli.services import start_worker, stop_worker

    prefix = f"kill{n}-{uuid.uuid4().hex[:6]}"
    out = workdir / f"load-kill-{n}.json"
    env = worker_env(redis_url, database_url)
    first = start_worker(env, threads=8, log_path=workdir / f"worker-kill-{n}a.log")
    second = None
    try:
        load_process = callers.start(
            out,
            {"MODQ_REDIS_URL": redis_url},
            prefix=prefix,
            jobs=load.jobs,
            producers=load.producers,
            send_s=load.send_s,
            wait_s=load.wait_s,
        )
        wait_for_rows(database_url, prefix, max(5, load.jobs // 5), timeout_s=180)
        wait_until_holding(redis_url, timeout_s=HOLDING_WAIT_S)
        os.killpg(first.pid, signal.SIGKILL)  # mid-batch: jobs reserved, none acknowledged
        first.wait(10)
        in_flight = unacked(redis_url)  # jobs the dead worker held: they must come back
        second = start_worker(env, threads=8, log_path=workdir / f"worker-kill-{n}b.log")
        load_process.wait(load.send_s + load.wait_s + 120)
        report = callers.read(out)
        wait_for_rows(database_url, prefix, len(report.accepted), timeout_s=15)
    finally:
        stop_worker(first)
        if second is not None:
            stop_worker(second)
    stored_ids, duplicated = callers.stored_rows(database_url, prefix)
    accepted = set(report.accepted)
    return {
        "sent": len(accepted),
        "stored": len(stored_ids & accepted),
        "lost": len(accepted - stored_ids),
        "duplicated": duplicated,
        "caller_errors": len(report.refused_at)
        + len(report.get_errors)
        + len(report.send_errors)
        + report.timeouts,
        "in_flight_at_kill": in_flight,
    }


def run(workdir: Path, *, quick: bool) -> FaultRow:
    """One row: the sums over the rounds (1 quick, 3 full)."""
    import migrations
    from cli.services import RedisServer

    started = time.monotonic()
    load, rounds = (QUICK, 1) if quick else (FULL, 3)
    server = RedisServer(persistence="aof", folder=workdir / "redis")
    server.folder.mkdir(parents=True, exist_ok=True)
    database_url = f"sqlite:///{workdir / 'results.db'}"
    migrations.upgrade(database_url)
    server.start()
    try:
        totals = [one_round(workdir, server.url, database_url, load, n) for n in range(rounds)]
    finally:
        server.stop()
    counted = ("sent", "stored", "lost", "duplicated", "caller_errors")
    summed = {key: sum(t[key] for t in totals) for key in counted}
    return FaultRow(
        scenario="worker SIGKILL",
        broker="redis (AOF)",
        **summed,
        seconds=round(time.monotonic() - started, 1),
        notes=(
            f"{rounds} round(s) of {load.jobs} jobs, the worker's process group SIGKILLed "
            f"holding {sum(t['in_flight_at_kill'] for t in totals)} unacked jobs"
        ),
        extra={"rounds": totals},
    )


if __name__ == "__main__":
    import argparse
    import json
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m bench.faults.worker_kill")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="modq-fault-kill-") as folder:
        print(json.dumps(run(Path(folder), quick=args.quick).as_dict()))
