"""Fault scenario: PostgreSQL goes away under load, for longer than a minute, and comes back.

The worker reaches a PostgreSQL database of the scenario's own through a TCP proxy
(``bench/faults/tcp_proxy.py``); the outage is the proxy stopped (connections reset, new ones
refused), the recovery the proxy started again. Callers (``bench.faults.load``, a process of
their own) send ``moderate`` jobs at a steady pace and wait in ``.get()``; the broker is a
private Redis with AOF.

Rows:

- **breaker** (quick and full): the worker's database breaker (tasks/storage_breaker.py)
  opens, the worker stops consuming and the jobs wait on the broker; ``extra`` has the retries
  counted while it was open (flat: nothing is consumed) and the deepest queue seen.
- **retries only** (full): the breaker off, the retry schedule alone (tasks/retry_policy.py)
  carries the jobs through a 90 s outage: the outage in which Celery's old jitter lost 8 of
  2,905 items (issue 12).

Each row counts from the outside: jobs the callers had accepted, result rows in the database,
jobs lost (accepted and neither stored nor failed typed), duplicate rows, caller errors.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.faults import FaultRow
from bench.faults import load as callers
from bench.faults.tcp_proxy import TcpProxy

REPO = Path(__file__).resolve().parents[2]
ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True)
class Load:
    jobs: int
    producers: int
    send_s: float  # the producers spread their jobs over this long
    down_at_s: float  # the outage starts this long after the first row is stored
    down_s: float  # the database stays away this long
    wait_s: float  # callers wait this long after the sending ends


QUICK = Load(jobs=200, producers=2, send_s=20, down_at_s=3, down_s=15, wait_s=90)
FULL = Load(jobs=2_000, producers=4, send_s=60, down_at_s=5, down_s=90, wait_s=240)


@contextlib.contextmanager
def postgres_database(admin_url: str = ADMIN_URL) -> Iterator[str]:
    """A database of our own (``modq_fault_*``), migrated; dropped after."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    import migrations

    name = f"modq_fault_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        migrations.upgrade(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, ""


def breaker_check(port: int) -> str:
    status, body = _get(port, "/healthz")
    if not status:
        return "no answer"
    return str(json.loads(body).get("checks", {}).get("storage_breaker", "absent"))


def retries(port: int) -> float:
    """Jobs this worker has sent back for a retry (``modq_worker_jobs_total{state="RETRY"}``)."""
    _, body = _get(port, "/metrics")
    pattern = r'^modq_worker_jobs_total\{[^}]*state="RETRY"[^}]*\} (\S+)$'
    return sum(float(m.group(1)) for m in re.finditer(pattern, body, re.MULTILINE))


def _wait_for_rows(database_url: str, prefix: str, count: int, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while True:
        stored = len(callers.stored_rows(database_url, prefix)[0])
        if stored >= count or time.monotonic() > deadline:
            return stored
        time.sleep(0.2)


def scenario(workdir: Path, load: Load, *, breaker: bool) -> FaultRow:
    from cli.services import RedisServer, free_port, start_worker, stop_worker
    from modq.broker.queues import BrokerQueues

    started = time.monotonic()
    name = "breaker" if breaker else "retries"
    server = RedisServer(persistence="aof", folder=workdir / f"redis-{name}")
    server.folder.mkdir(parents=True, exist_ok=True)
    redis_url = server.start()
    prefix = f"dbout-{name}-{uuid.uuid4().hex[:6]}"
    out = workdir / f"load-{name}.json"
    port = free_port()
    seen: dict[str, Any] = {"open": False, "max_depth": 0}
    with postgres_database() as database_url:
        from sqlalchemy.engine import make_url

        real = make_url(database_url)
        proxy = TcpProxy(real.host or "127.0.0.1", real.port or 5432).start()
        proxied = real.set(host="127.0.0.1", port=proxy.port).render_as_string(False)
        env = {
            "MODQ_REDIS_URL": redis_url,
            "MODQ_DATABASE_URL": proxied,
            "MODQ_MODEL_DIR": str(REPO / "models" / "current"),
            "MODQ_WORKER_METRICS_PORT": str(port),
            "MODQ_STORAGE_BREAKER_FAILURES": "5" if breaker else "0",
            "PYTHONUNBUFFERED": "1",
        }
        worker = start_worker(env, threads=8, log_path=workdir / f"worker-{name}.log")
        queues = BrokerQueues(redis_url, {})
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
            _wait_for_rows(database_url, prefix, 1, timeout_s=180)
            time.sleep(load.down_at_s)
            proxy.stop()
            down_until = time.monotonic() + load.down_s
            retries_at_open: float | None = None
            while time.monotonic() < down_until:
                seen["max_depth"] = max(seen["max_depth"], queues.depths(["normal"])["normal"])
                if breaker and retries_at_open is None and breaker_check(port) != "ok":
                    seen["open"] = True
                    time.sleep(3)  # jobs in hand fail fast and go back on the queue
                    retries_at_open = retries(port)
                time.sleep(0.5)
            seen["retries_while_open"] = (
                retries(port) - retries_at_open if retries_at_open is not None else None
            )
            proxy.resume()
            load_process.wait(load.send_s + load.wait_s + 120)
            report = callers.read(out)
            _wait_for_rows(database_url, prefix, len(report.accepted), timeout_s=30)
            seen["retries_total"] = retries(port)
        finally:
            stop_worker(worker)
            proxy.stop()
            server.stop()
        stored_ids, duplicated = callers.stored_rows(database_url, prefix)
    accepted = set(report.accepted)
    caller_errors = len(report.get_errors) + len(report.send_errors) + report.timeouts
    failed_typed = sum(1 for _, error in report.get_errors if error.startswith("Storage"))
    notes = f"PostgreSQL away {load.down_s:.0f} s (TCP proxy stopped)"
    if breaker:
        notes += (
            f"; breaker opened: {seen['open']}, retries while open: "
            f"{seen['retries_while_open']}, deepest queue {seen['max_depth']}"
        )
    else:
        notes += f"; breaker off, retries: {seen['retries_total']:.0f}"
    return FaultRow(
        scenario=f"database outage ({'breaker' if breaker else 'retries only'})",
        broker="redis (AOF)",
        sent=len(accepted),
        stored=len(stored_ids & accepted),
        lost=len(accepted - stored_ids) - failed_typed,
        duplicated=duplicated,
        caller_errors=caller_errors,
        failed_typed=failed_typed,
        seconds=round(time.monotonic() - started, 1),
        notes=notes,
        extra={**seen, "get_errors": report.get_errors[:5], "timeouts": report.timeouts},
    )


def run(workdir: Path, *, quick: bool) -> list[FaultRow]:
    """Quick: the breaker row with a 15 s outage. Full: both rows with a 90 s outage."""
    if quick:
        return [scenario(workdir, QUICK, breaker=True)]
    return [scenario(workdir, FULL, breaker=True), scenario(workdir, FULL, breaker=False)]


if __name__ == "__main__":
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m bench.faults.database_outage")
    parser.add_argument("--full", action="store_true", help="the full load (default: quick)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="modq-fault-db-") as folder:
        for row in run(Path(folder), quick=not args.full):
            print(json.dumps(row.as_dict(), default=str))
