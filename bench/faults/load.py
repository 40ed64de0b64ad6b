"""Real callers for the fault scenarios: producer threads send ``moderate`` jobs at a steady
pace while waiter threads block in ``.get()``; what each saw is written as JSON.

It runs in a process of its own (``python -m bench.faults.load``), so its modq client talks
to the scenario's broker (``MODQ_REDIS_URL`` in its environment), not the parent's. A
producer that gets ``BrokerUnavailable`` or ``Overloaded`` notes the time and sends the same
job again a moment later, as an app would; nothing it was refused is counted as sent.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bench.faults import FaultRow

REPO = Path(__file__).resolve().parents[2]
RESEND_PAUSE_S = 0.2


@dataclass
class LoadReport:
    """What the callers saw; times are ``time.time()`` so the parent can place them."""

    accepted: list[str] = field(default_factory=list)  # content ids the broker took
    refused_at: list[float] = field(default_factory=list)  # each BrokerUnavailable/Overloaded
    answered: int = 0  # .get() returned a result
    timeouts: int = 0  # .get() ran out its own timeout
    get_errors: list[tuple[float, str]] = field(default_factory=list)  # anything else
    send_errors: list[tuple[float, str]] = field(default_factory=list)  # untyped send errors


def content(i: int) -> str:
    return f"load item {i}: " + "some ordinary words to score " * (3 + i % 20)


def run(prefix: str, jobs: int, producers: int, send_s: float, wait_s: float) -> LoadReport:
    from modq.errors import BrokerUnavailable, Overloaded
    from tasks import moderate

    report, lock = LoadReport(), threading.Lock()
    waiting: queue.Queue[Any] = queue.Queue()
    deadline = time.monotonic() + send_s + wait_s
    pause_s = send_s / max(jobs / producers, 1)

    def produce(first: int) -> None:
        for i in range(first, jobs, producers):
            while time.monotonic() < deadline:
                try:
                    job = moderate.delay(content_id=f"{prefix}-{i}", content=content(i))
                except (BrokerUnavailable, Overloaded):
                    with lock:
                        report.refused_at.append(time.time())
                    time.sleep(RESEND_PAUSE_S)
                    continue
                except Exception as exc:  # untyped: a finding in itself
                    with lock:
                        report.send_errors.append((time.time(), f"{type(exc).__name__}: {exc}"))
                    time.sleep(RESEND_PAUSE_S)
                    continue
                with lock:
                    report.accepted.append(f"{prefix}-{i}")
                waiting.put(job)
                break
            time.sleep(pause_s)

    def wait() -> None:
        from celery.exceptions import TimeoutError as CeleryTimeout

        while True:
            job = waiting.get()
            if job is None:
                return
            try:
                job.get(timeout=max(deadline - time.monotonic(), 1.0))
                outcome = "answered"
            except CeleryTimeout:
                outcome = "timeout"
            except Exception as exc:
                with lock:
                    report.get_errors.append((time.time(), f"{type(exc).__name__}: {exc}"))
                continue
            with lock:
                if outcome == "answered":
                    report.answered += 1
                else:
                    report.timeouts += 1

    senders = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
    waiters = [threading.Thread(target=wait) for _ in range(producers)]
    for thread in senders + waiters:
        thread.start()
    for thread in senders:
        thread.join()
    for _ in waiters:
        waiting.put(None)
    for thread in waiters:
        thread.join()
    return report


def start(
    out: Path,
    env: Mapping[str, str],
    *,
    prefix: str,
    jobs: int,
    producers: int,
    send_s: float,
    wait_s: float,
) -> subprocess.Popen[bytes]:
    """The load as a child process writing its report to ``out``."""
    command = [
        sys.executable, "-m", "bench.faults.load", "--out", str(out), "--prefix", prefix,
        "--jobs", str(jobs), "--producers", str(producers), "--send-s", str(send_s),
        "--wait-s", str(wait_s),
    ]  # fmt: skip
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("MODQ_")}
    log = open(out.with_suffix(".log"), "ab")  # noqa: SIM115 (the child keeps its own handle)
    with log:
        return subprocess.Popen(
            command, cwd=REPO, env={**child_env, **env}, stdout=log, stderr=subprocess.STDOUT
        )


def read(out: Path) -> LoadReport:
    data = json.loads(out.read_text())
    return LoadReport(**data)


def stored_rows(database_url: str, prefix: str) -> tuple[set[str], int]:
    """(content ids stored, rows beyond one per content id) for ``prefix``."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            counts = connection.execute(
                text(
                    "SELECT content_id, COUNT(*) FROM moderation_results "
                    "WHERE content_id LIKE :p GROUP BY content_id"
                ),
                {"p": f"{prefix}-%"},
            ).all()
    finally:
        engine.dispose()
    return {row[0] for row in counts}, sum(int(row[1]) - 1 for row in counts)


def restart_row(
    report: LoadReport,
    database_url: str,
    prefix: str,
    *,
    scenario: str,
    broker: str,
    down_at: float,
    window_end: float,
    started: float,
    outage: str,
    extra: Mapping[str, Any],
) -> FaultRow:
    """A broker-restart scenario's ``FaultRow``: a refusal from 1 s before the outage
    (``down_at``) to ``window_end`` is inside the documented window (the load re-sent it);
    any other refusal, a ``.get()`` error or timeout, or an untyped send error is a caller
    error. ``outage`` opens the notes (what happened, how long)."""
    stored_ids, duplicated = stored_rows(database_url, prefix)
    in_window = sum(1 for t in report.refused_at if down_at - 1.0 <= t <= window_end)
    outside = len(report.refused_at) - in_window
    accepted = set(report.accepted)
    return FaultRow(
        scenario=scenario,
        broker=broker,
        sent=len(accepted),
        stored=len(stored_ids & accepted),
        lost=len(accepted - stored_ids),
        duplicated=duplicated,
        caller_errors=outside + len(report.get_errors) + len(report.send_errors) + report.timeouts,
        seconds=round(time.monotonic() - started, 1),
        notes=(
            f"{outage}; {in_window} BrokerUnavailable inside the window (re-sent); "
            f"{report.timeouts} .get() timeouts"
        ),
        extra={
            **extra,
            "refused_in_window": in_window,
            "refused_outside_window": outside,
            "get_timeouts": report.timeouts,
            "get_errors": report.get_errors[:5],
            "send_errors": report.send_errors[:5],
            "answered": report.answered,
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.faults.load", description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--jobs", type=int, required=True)
    parser.add_argument("--producers", type=int, default=4)
    parser.add_argument("--send-s", type=float, default=10.0)
    parser.add_argument("--wait-s", type=float, default=60.0)
    args = parser.parse_args()
    report = run(args.prefix, args.jobs, args.producers, args.send_s, args.wait_s)
    args.out.write_text(json.dumps(asdict(report)))


if __name__ == "__main__":
    main()
