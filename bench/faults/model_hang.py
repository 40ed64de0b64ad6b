"""Fault scenario: the model hangs (blocks, raising nothing) under load, and comes back.

A wedged GPU or a stuck session does not raise: a model call simply never returns. Before the
watchdog such a call held its jobs until the pipeline's 120 s wait, the breaker never opened
(nothing failed) and ``/healthz`` said 200 throughout. Here, on a real CPU worker (no fallback:
jobs are parked) with a private Redis (AOF) and SQLite, the fault injection of
``bench/faults/inject`` makes every model call hang while a trigger file exists. The
worker's batcher gives up on a call after ``MODQ_MODEL_CALL_TIMEOUT_S``
(``model_failure.CALL_TIMEOUT_S``): its jobs get ``ModelHung`` and are retried, the breaker
opens, jobs are parked without touching the model, the probe (bounded by the same deadline)
keeps it open; the trigger goes, the stuck calls return, a probe closes the breaker and every
parked job is stored.

Counted from the outside as ``model_failure`` counts (its helpers): jobs sent, rows stored,
lost, duplicated, caller errors; ``extra``: ``/healthz`` and the breaker gauge while hung,
model calls that hung (the injection's events file).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.faults import FaultRow
from bench.faults.model_failure import (
    CALL_TIMEOUT_S,
    Load,
    breaker_open,
    callers,
    events,
    fault_env,
    fault_row,
    gauge,
    healthz,
    read_callers,
    retries,
    serving_worker,
    stack,
    wait_for,
)


@dataclass(frozen=True)
class HangLoad:
    load: Load
    hang_s: float  # the model hangs this long in all (the issue saw 150 s)


QUICK = HangLoad(Load(jobs=120, send_s=8.0, fault_at_s=2.0, fault_s=0.0, wait_s=120.0), 12.0)
FULL = HangLoad(Load(jobs=600, send_s=30.0, fault_at_s=5.0, fault_s=0.0, wait_s=300.0), 150.0)


def hung_model(workdir: Path, hang: HangLoad) -> FaultRow:
    """Every model call hangs for ``hang.hang_s``; the watchdog turns it into retries."""
    load = hang.load
    started_s = time.monotonic()
    with stack(workdir, "hang") as (redis_url, database_url, port, events_file, worker_env):
        trigger = workdir / "model-hangs"
        env = {
            **worker_env,
            **fault_env(events=events_file, hang=trigger, fallback="none", metrics_port=port),
        }
        prefix = f"hang-{uuid.uuid4().hex[:6]}"
        with (
            serving_worker(env, workdir, expect_model=True),
            callers(workdir, {"MODQ_REDIS_URL": redis_url}, prefix, load) as producer,
        ):
            time.sleep(load.fault_at_s)
            trigger.touch()  # every model call hangs from now on
            hung_at_s = time.monotonic()
            wait_for(lambda: breaker_open(port), 60, "the breaker did not open")
            opened_after_s = time.monotonic() - hung_at_s
            open_status, open_body = healthz(port)
            open_gauge = gauge(port, "modq_worker_model_breaker_state")
            retried = retries(port)
            time.sleep(max(0.0, hang.hang_s - (time.monotonic() - hung_at_s)))
            retries_while_hung = retries(port) - retried
            trigger.unlink()  # the model answers again; the stuck calls return
            wait_for(lambda: healthz(port)[0] == 200, 60, "the breaker did not close")
            producer.wait(load.send_s + load.wait_s + 30)
        report = read_callers(workdir, prefix)
        hung_calls = events(events_file, "hang")
        return fault_row(
            "model hangs: calls never return, jobs parked",
            report,
            database_url,
            prefix,
            started_s,
            f"hung {hang.hang_s:.0f} s: breaker open {opened_after_s:.1f} s after the hang "
            f"(call timeout {CALL_TIMEOUT_S:g} s), /healthz {open_status}; {hung_calls} model "
            f"calls hung, {retries_while_hung:.0f} job retries parked",
            {
                "healthz_while_open": open_status,
                "breaker_check_while_open": open_body.get("checks", {}).get("model_breaker"),
                "model_calls_check_while_open": open_body.get("checks", {}).get("model_calls"),
                "breaker_gauge_while_open": open_gauge,
                "breaker_opened_after_s": round(opened_after_s, 1),
                "hung_calls": hung_calls,
                "retries_while_hung": retries_while_hung,
            },
        )


def run(workdir: Path, *, quick: bool) -> list[FaultRow]:
    return [hung_model(workdir, QUICK if quick else FULL)]
