"""Fault scenario: the model fails under load, on a real worker, and comes back.

Two rows (``run`` returns a list), both on a private Redis with AOF:

- **GPU engine faults → CPU fallback.** The worker's primary engine raises like a CUDA fault
  (``bench/faults/inject``: there is no GPU here, so the failing GPU engine is played by the
  real CPU model that says ``cuda`` and raises while a trigger file exists). After
  ``MODQ_MODEL_BREAKER_FAILURES`` failed batches the breaker opens and the real CPU copy of the
  model serves, stamped with the same model version; the trigger goes, a probe closes it.
- **Model file corrupt → jobs parked.** The worker starts on a model folder whose
  ``model.onnx`` is truncated (a bad artifact, a disk fault). Loads fail, the breaker opens,
  jobs are parked (``ModelCircuitOpen``, retried) without touching the model, one probe per
  interval tries; the file is mended and the next probe loads it.

Each row counts from the outside: jobs the callers sent, result rows in the database, jobs
lost (neither stored nor failed with a typed reason), duplicate rows, callers that saw an
error; ``extra`` has what the breaker did (served by the fallback, model touches while open,
``/healthz`` while open).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.faults import FaultRow

REPO = Path(__file__).resolve().parents[2]
INJECT = Path(__file__).resolve().parent / "inject"  # the sitecustomize that injects faults
BREAKER_FAILURES = 3
PROBE_INTERVAL_S = 1.0
CALL_TIMEOUT_S = 3.0  # a model call with no answer after this long is hung (the hang rows)


@dataclass(frozen=True)
class Load:
    jobs: int  # sent at a steady pace over send_s
    send_s: float
    fault_at_s: float  # after the first send
    fault_s: float  # the fault lasts this long once the breaker is seen open
    wait_s: float  # callers wait this long for each result


QUICK = Load(jobs=120, send_s=8.0, fault_at_s=2.0, fault_s=4.0, wait_s=90.0)
FULL = Load(jobs=600, send_s=30.0, fault_at_s=5.0, fault_s=15.0, wait_s=180.0)


# --- the worker --------------------------------------------------------------------------
def fault_env(
    *,
    events: Path,
    trigger: Path | None = None,
    fallback: str = "none",
    metrics_port: int,
    hang: Path | None = None,
) -> dict[str, str]:
    """Environment of a worker with the fault injection loaded and a fast breaker; ``hang``:
    the trigger file whose presence makes every model call hang (``bench/faults/inject``)."""
    path = os.pathsep.join(p for p in (str(INJECT), os.environ.get("PYTHONPATH", "")) if p)
    env = {
        "PYTHONPATH": path,
        "MODQ_FAULT_EVENTS": str(events),
        "MODQ_MODEL_BREAKER_FAILURES": str(BREAKER_FAILURES),
        "MODQ_MODEL_PROBE_INTERVAL_S": str(PROBE_INTERVAL_S),
        "MODQ_MODEL_FALLBACK": fallback,
        "MODQ_RETRY_DELAY_MAX_S": "2",  # parked jobs come back within 2 s of the recovery
        "MODQ_WORKER_METRICS_PORT": str(metrics_port),
        "MODQ_MAX_WAIT_MS": "5",
        "PYTHONUNBUFFERED": "1",
    }
    if trigger is not None:
        env["MODQ_FAULT_GPU_TRIGGER"] = str(trigger)
    if hang is not None:
        env["MODQ_FAULT_HANG_TRIGGER"] = str(hang)
        env["MODQ_MODEL_CALL_TIMEOUT_S"] = str(CALL_TIMEOUT_S)
    return env


def corrupt_copy(model_dir: Path, folder: Path) -> bytes:
    """A copy of ``model_dir`` at ``folder`` with ``model.onnx`` cut to a third; returns the
    whole file's bytes (to mend it with)."""
    shutil.copytree(model_dir.resolve(), folder)
    onnx_file = folder / "model.onnx"
    whole = onnx_file.read_bytes()
    onnx_file.write_bytes(whole[: len(whole) // 3])
    return whole


def events(path: Path, kind: str) -> int:
    """How many ``kind`` events (``load``, ``run primary``, ``run fallback``) the worker wrote."""
    if not path.exists():
        return 0
    return sum(1 for line in path.read_text().splitlines() if line == kind)


def healthz(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    except OSError as error:
        return 0, {"error": str(error)}


def gauge(port: int, name: str) -> float | None:
    """A sample's value on the worker's /metrics (None if absent or unreachable)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


RETRIES = 'modq_worker_jobs_total{state="RETRY",task="modq.moderate"}'


def retries(port: int) -> float:
    """Jobs the worker has sent back for a retry so far."""
    return gauge(port, RETRIES) or 0.0


def breaker_open(port: int) -> bool:
    status, body = healthz(port)
    return status == 503 and body.get("checks", {}).get("model_breaker", "ok") != "ok"


def wait_for(check: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout_s:.0f} s")
        time.sleep(0.1)


# --- the callers (a child process: its client talks to the scenario's broker) ------------
@dataclass
class Callers:
    accepted: list[str] = field(default_factory=list)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # content id -> result
    failed_typed: dict[str, str] = field(default_factory=dict)  # content id -> error code
    errors: list[str] = field(default_factory=list)  # untyped, timeouts, send errors


def produce(prefix: str, jobs: int, send_s: float, wait_s: float) -> Callers:
    from modq.errors import ModerationError
    from tasks import moderate

    report, lock, pending = Callers(), threading.Lock(), []
    pause_s = send_s / max(jobs, 1)
    for i in range(jobs):
        content_id = f"{prefix}-{i}"
        try:
            pending.append((content_id, moderate.delay(content_id=content_id, content=text(i))))
            report.accepted.append(content_id)
        except Exception as exc:  # a refused send is a caller error here (no outage of it)
            report.errors.append(f"send {type(exc).__name__}: {exc}"[:300])
        time.sleep(pause_s)

    def wait(content_id: str, job: Any) -> None:
        try:
            result = job.get(timeout=wait_s)
        except ModerationError as exc:
            with lock:
                report.failed_typed[content_id] = exc.code
        except Exception as exc:  # a timeout or an untyped error: the caller saw an error
            with lock:
                report.errors.append(f"{type(exc).__name__}: {exc}"[:300])
        else:
            with lock:
                report.results[content_id] = {
                    "model_version": result["model_version"],
                    "engine": (result.get("extra") or {}).get("engine"),
                }

    threads = [threading.Thread(target=wait, args=item) for item in pending]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return report


def text(i: int) -> str:
    return f"model failure item {i}: " + "an ordinary sentence to score " * (1 + i % 7)


@contextlib.contextmanager
def callers(
    workdir: Path, env: Mapping[str, str], prefix: str, load: Load
) -> Iterator[subprocess.Popen[bytes]]:
    out = workdir / f"{prefix}.json"
    command = [
        sys.executable, "-m", "bench.faults.model_failure", "--produce", str(out),
        "--prefix", prefix, "--jobs", str(load.jobs), "--send-s", str(load.send_s),
        "--wait-s", str(load.wait_s),
    ]  # fmt: skip
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("MODQ_")}
    with open(workdir / f"{prefix}.log", "ab") as log:
        process = subprocess.Popen(
            command, cwd=REPO, env={**child_env, **env}, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def read_callers(workdir: Path, prefix: str) -> Callers:
    return Callers(**json.loads((workdir / f"{prefix}.json").read_text()))


def fallback_served(prefix: str, workdir: Path) -> int:
    """Results the callers got that the fallback engine scored."""
    report = read_callers(workdir, prefix)
    return sum(1 for result in report.results.values() if result.get("engine"))


def stored_rows(database_url: str, prefix: str) -> tuple[set[str], int]:
    """(content ids stored, rows beyond one per content id) for ``prefix``."""
    from sqlalchemy import create_engine
    from sqlalchemy import text as sql

    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sql(
                    "SELECT content_id, COUNT(*) FROM moderation_results "
                    "WHERE content_id LIKE :p GROUP BY content_id"
                ),
                {"p": f"{prefix}-%"},
            ).all()
    finally:
        engine.dispose()
    return {row[0] for row in rows}, sum(int(row[1]) - 1 for row in rows)


# --- the scenarios -------------------------------------------------------------------------
def fault_row(
    scenario: str,
    report: Callers,
    database_url: str,
    prefix: str,
    started_s: float,
    notes: str,
    extra: dict[str, object],
) -> FaultRow:
    stored, duplicated = stored_rows(database_url, prefix)
    accepted = set(report.accepted)
    lost = len(accepted - stored - set(report.failed_typed))
    versions = sorted({r["model_version"] for r in report.results.values()})
    fallback = sum(1 for r in report.results.values() if r.get("engine"))
    return FaultRow(
        scenario=scenario,
        broker="redis (AOF)",
        sent=len(accepted),
        stored=len(stored & accepted),
        lost=lost,
        duplicated=duplicated,
        caller_errors=len(report.errors),
        failed_typed=len(report.failed_typed),
        seconds=round(time.monotonic() - started_s, 1),
        notes=notes,
        extra={"served_by_fallback": fallback, "model_versions": versions, **extra},
    )


def gpu_fault(workdir: Path, load: Load) -> FaultRow:
    """The primary engine raises like a CUDA fault for a while; the CPU copy serves."""
    started_s = time.monotonic()
    with stack(workdir, "gpu") as (redis_url, database_url, port, events_file, worker_env):
        trigger = workdir / "gpu-fault"
        env = {
            **worker_env,
            **fault_env(events=events_file, trigger=trigger, fallback="auto", metrics_port=port),
        }
        prefix = f"gpu-{uuid.uuid4().hex[:6]}"
        with (
            serving_worker(env, workdir, expect_model=True),
            callers(workdir, {"MODQ_REDIS_URL": redis_url}, prefix, load) as producer,
        ):
            time.sleep(load.fault_at_s)
            trigger.touch()  # the GPU faults from now on
            wait_for(lambda: breaker_open(port), 60, "the breaker did not open")
            failed_runs, retried = events(events_file, "run primary"), retries(port)
            open_status, open_body = healthz(port)
            open_gauge = gauge(port, "modq_worker_model_breaker_state")
            time.sleep(load.fault_s)
            primary_while_open = events(events_file, "run primary") - failed_runs
            retries_while_open = retries(port) - retried
            trigger.unlink()
            wait_for(lambda: healthz(port)[0] == 200, 60, "the breaker did not close")
            producer.wait(load.send_s + load.wait_s + 30)
        report = read_callers(workdir, prefix)
        return fault_row(
            "model failure: GPU engine faults, CPU fallback",
            report,
            database_url,
            prefix,
            started_s,
            f"open {load.fault_s:.0f} s: {fallback_served(prefix, workdir)} jobs served by the "
            f"CPU fallback, {primary_while_open} GPU calls (the probes, every "
            f"{PROBE_INTERVAL_S:.0f} s)",
            {
                "healthz_while_open": open_status,
                "breaker_check_while_open": open_body.get("checks", {}).get("model_breaker"),
                "breaker_gauge_while_open": open_gauge,
                "primary_calls_while_open": primary_while_open,
                "retries_while_open": retries_while_open,
                "fallback_calls": events(events_file, "run fallback"),
            },
        )


def corrupt_file(workdir: Path, load: Load) -> FaultRow:
    """The worker starts on a truncated model file; jobs are parked until it is mended."""
    from modq.settings import get_settings

    started_s = time.monotonic()
    with stack(workdir, "file") as (redis_url, database_url, port, events_file, worker_env):
        folder = workdir / "model"
        whole = corrupt_copy(Path(get_settings().model_dir), folder)
        env = {
            **worker_env,
            **fault_env(events=events_file, fallback="none", metrics_port=port),
            "MODQ_MODEL_DIR": str(folder),
        }
        prefix = f"file-{uuid.uuid4().hex[:6]}"
        with (
            serving_worker(env, workdir, expect_model=False),
            callers(workdir, {"MODQ_REDIS_URL": redis_url}, prefix, load) as producer,
        ):
            wait_for(lambda: breaker_open(port), 60, "the breaker did not open")
            loads_at_open, retried = events(events_file, "load"), retries(port)
            open_status, open_body = healthz(port)
            open_gauge = gauge(port, "modq_worker_model_breaker_state")
            time.sleep(load.fault_s)
            loads_while_open = events(events_file, "load") - loads_at_open
            retries_while_open = retries(port) - retried
            (folder / "model.onnx").write_bytes(whole)  # mended
            wait_for(lambda: healthz(port)[0] == 200, 60, "the breaker did not close")
            producer.wait(load.send_s + load.wait_s + 30)
        report = read_callers(workdir, prefix)
        return fault_row(
            "model failure: model file corrupt, jobs parked",
            report,
            database_url,
            prefix,
            started_s,
            f"open {load.fault_s:.0f} s: {retries_while_open:.0f} job retries parked, "
            f"{loads_while_open} model loads (the probes, every {PROBE_INTERVAL_S:.0f} s)",
            {
                "healthz_while_open": open_status,
                "breaker_check_while_open": open_body.get("checks", {}).get("model_breaker"),
                "breaker_gauge_while_open": open_gauge,
                "loads_while_open": loads_while_open,
                "retries_while_open": retries_while_open,
            },
        )


@contextlib.contextmanager
def stack(workdir: Path, name: str) -> Iterator[tuple[str, str, int, Path, dict[str, str]]]:
    """A Redis with AOF and a SQLite database of the row's own; a free port; an events file."""
    import migrations
    from cli.services import RedisServer, free_port

    server = RedisServer(persistence="aof", folder=workdir / f"redis-{name}")
    server.folder.mkdir(parents=True, exist_ok=True)
    database_url = f"sqlite:///{workdir / f'results-{name}.db'}"
    migrations.upgrade(database_url)
    url = server.start()
    try:
        env = {"MODQ_REDIS_URL": url, "MODQ_DATABASE_URL": database_url}
        yield url, database_url, free_port(), workdir / f"events-{name}", env
    finally:
        server.stop()


@contextlib.contextmanager
def serving_worker(env: Mapping[str, str], workdir: Path, *, expect_model: bool) -> Iterator[None]:
    from cli.services import start_worker, stop_worker

    port = int(env["MODQ_WORKER_METRICS_PORT"])
    process = start_worker(env, threads=4, log_path=workdir / "worker.log")
    try:

        def ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError((workdir / "worker.log").read_text()[-3000:])
            status = healthz(port)[0]
            return status != 0 and (not expect_model or status == 200)

        wait_for(ready, 120, "the worker did not start")
        yield
    finally:
        stop_worker(process)


def run(workdir: Path, *, quick: bool) -> list[FaultRow]:
    load = QUICK if quick else FULL
    return [gpu_fault(workdir, load), corrupt_file(workdir, load)]


def main() -> None:
    import argparse
    from dataclasses import asdict

    parser = argparse.ArgumentParser(prog="python -m bench.faults.model_failure")
    parser.add_argument("--produce", type=Path, help="run the callers, write their report here")
    parser.add_argument("--prefix")
    parser.add_argument("--jobs", type=int, default=QUICK.jobs)
    parser.add_argument("--send-s", type=float, default=QUICK.send_s)
    parser.add_argument("--wait-s", type=float, default=QUICK.wait_s)
    parser.add_argument("--full", action="store_true", help="the full load (default: quick)")
    args = parser.parse_args()
    if args.produce:
        report = produce(args.prefix, args.jobs, args.send_s, args.wait_s)
        args.produce.write_text(json.dumps(asdict(report)))
        return
    import tempfile

    workdir = Path(tempfile.mkdtemp(prefix="modq-fault-model-"))
    try:
        for row in run(workdir, quick=not args.full):
            print(json.dumps(row.as_dict()))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
