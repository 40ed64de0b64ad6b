"""The model's circuit breaker on a real worker process, with real failures.

- A model file that will not load (``model.onnx`` truncated on disk: a bad artifact, a disk
  fault) on a worker that starts on it: the breaker opens, ``/healthz`` answers 503 and the
  gauge shows 2, jobs are parked (retried) without the worker touching the model file but
  once per probe, and once the file is mended a probe loads it: every job is stored once.
- A GPU engine that faults: there is no GPU here, so the fault injection of
  ``bench/faults/inject`` (loaded into the worker as ``sitecustomize``) makes the primary
  engine say ``cuda`` and raise like a CUDA fault while a trigger file exists. The fallback is
  real: the CPU copy of the model the worker builds from the same files. Jobs are served by it
  with the same model version and say so (``extra.engine``); the primary is called only by
  the probe; once the trigger goes, a probe closes the breaker and the primary serves again.

Both count the model's loads and calls through the injection's events file, outside the code
under test.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bench.faults.model_failure import (
    BREAKER_FAILURES,
    PROBE_INTERVAL_S,
    breaker_open,
    corrupt_copy,
    events,
    fault_env,
    gauge,
    healthz,
    stored_rows,
)
from cli.services import free_port
from tasks import moderate
from tests.polling import wait_until
from tests.workers import running_worker

pytestmark = pytest.mark.integration  # each runs in about 10 s

OPEN_WINDOW_S = 3.0  # how long the tests watch an open breaker for model touches
GAUGE = "modq_worker_model_breaker_state"


def text(i: int) -> str:
    return f"breaker job {i}: an ordinary sentence to score " + "word " * (i % 5)


def jobs_retried(port: int) -> float:
    return gauge(port, 'modq_worker_jobs_total{state="RETRY",task="modq.moderate"}') or 0.0


def test_a_model_file_that_will_not_load_parks_jobs_until_it_is_mended(
    model_dir: Path, database: str, tmp_path: Path
) -> None:
    folder = tmp_path / "model"
    whole = corrupt_copy(model_dir, folder)
    events_file, port = tmp_path / "events", free_port()
    env = {
        **fault_env(events=events_file, fallback="none", metrics_port=port),
        "MODQ_MODEL_DIR": str(folder),
        "MODQ_DATABASE_URL": database,
    }
    with running_worker(env, log_dir=tmp_path, threads=4, expect_model=False) as worker:
        jobs = [moderate.delay(content_id=f"file-{i}", content=text(i)) for i in range(20)]
        wait_until(lambda: breaker_open(port), timeout_s=60, message="breaker never opened")
        status, body = healthz(port)
        assert status == 503
        assert "jobs parked" in body["checks"]["model_breaker"]
        assert "cannot load ONNX model" in body["checks"]["model_breaker"]
        assert gauge(port, GAUGE) == 2
        stats = worker.stats()  # `celery inspect modq_stats`, what the API's /readyz reads
        assert (stats["model_breaker"], stats["model_fallback"]) == ("open", False)
        assert stats["storage_breaker"] == "closed"

        loads, retried, since_s = events(events_file, "load"), jobs_retried(port), time.monotonic()
        assert BREAKER_FAILURES <= loads <= BREAKER_FAILURES + 2  # those that opened it
        time.sleep(OPEN_WINDOW_S)  # a window to count in: jobs keep retrying meanwhile
        loads_while_open = events(events_file, "load") - loads
        retries_while_open = jobs_retried(port) - retried
        probes_due = (time.monotonic() - since_s) / PROBE_INTERVAL_S + 1
        assert loads_while_open <= probes_due  # only the probes load it
        assert retries_while_open > loads_while_open  # retries did not reach the model
        assert all(job.state in ("PENDING", "RETRY") for job in jobs)  # parked, not failed

        (folder / "model.onnx").write_bytes(whole)
        wait_until(lambda: healthz(port)[0] == 200, timeout_s=30, message="breaker never closed")
        assert gauge(port, GAUGE) == 0
        assert worker.stats()["model_breaker"] == "closed"
        results = [job.get(timeout=60) for job in jobs]
    assert {r["content_id"] for r in results} == {f"file-{i}" for i in range(20)}
    stored, duplicated = stored_rows(database, "file")
    assert (len(stored), duplicated) == (20, 0)


def test_a_faulting_gpu_engine_hands_its_jobs_to_the_cpu_copy(
    model_dir: Path, database: str, tmp_path: Path
) -> None:
    events_file, trigger, port = tmp_path / "events", tmp_path / "gpu-fault", free_port()
    env = {
        **fault_env(events=events_file, trigger=trigger, fallback="auto", metrics_port=port),
        "MODQ_DATABASE_URL": database,
    }
    with running_worker(env, log_dir=tmp_path, threads=4) as worker:
        before = [moderate.delay(content_id=f"gpu-a{i}", content=text(i)) for i in range(5)]
        served_before = [job.get(timeout=60) for job in before]
        assert all("engine" not in r["extra"] for r in served_before)
        version = served_before[0]["model_version"]

        trigger.touch()  # the GPU faults from now on
        during = [moderate.delay(content_id=f"gpu-b{i}", content=text(i)) for i in range(30)]
        wait_until(lambda: breaker_open(port), timeout_s=60, message="breaker never opened")
        status, body = healthz(port)
        assert status == 503 and "serving on the cpu fallback" in body["checks"]["model_breaker"]
        assert "CUDA failure 700" in body["checks"]["model_breaker"]
        assert gauge(port, GAUGE) == 2
        served_during = [job.get(timeout=60) for job in during]  # none lost, none failed
        assert {r["model_version"] for r in served_during} == {version}
        fallback = [r for r in served_during if "engine" in r["extra"]]
        assert fallback, "no job was served by the fallback"
        assert all(r["extra"]["engine"] == {"role": "fallback", "device": "cpu"} for r in fallback)
        assert (gauge(port, "modq_worker_fallback_texts_total") or 0) >= len(fallback)
        stats = worker.stats()  # the API counts this worker as serving (api/readiness.py)
        assert stats["model_breaker"] in ("open", "half_open") and stats["model_fallback"]

        primary_runs, since_s = events(events_file, "run primary"), time.monotonic()
        time.sleep(OPEN_WINDOW_S)
        primary_while_open = events(events_file, "run primary") - primary_runs
        probes_due = (time.monotonic() - since_s) / PROBE_INTERVAL_S + 1
        assert primary_while_open <= probes_due  # only the probes call it
        assert events(events_file, "run fallback") >= 1

        trigger.unlink()  # the GPU recovers
        wait_until(lambda: healthz(port)[0] == 200, timeout_s=30, message="breaker never closed")
        after = [moderate.delay(content_id=f"gpu-c{i}", content=text(i + 100)) for i in range(5)]
        served_after = [job.get(timeout=60) for job in after]
        assert all("engine" not in r["extra"] for r in served_after)  # the primary again
    stored, duplicated = stored_rows(database, "gpu")
    assert (len(stored), duplicated) == (40, 0)


def test_under_prefork_the_parent_reports_a_child_whose_breaker_is_open(
    model_dir: Path, database: str, tmp_path: Path
) -> None:
    """The pool's parent never loads a model: it reads its children's breaker gauges."""
    folder = tmp_path / "model"
    whole = corrupt_copy(model_dir, folder)
    port = free_port()
    env = {
        **fault_env(events=tmp_path / "events", fallback="none", metrics_port=port),
        "MODQ_MODEL_DIR": str(folder),
        "MODQ_DATABASE_URL": database,
    }
    with running_worker(env, log_dir=tmp_path, threads=2, pool="prefork", expect_model=False):
        jobs = [moderate.delay(content_id=f"fork-{i}", content=text(i)) for i in range(10)]
        wait_until(lambda: breaker_open(port), timeout_s=60, message="breaker never opened")
        assert "in a child" in healthz(port)[1]["checks"]["model_breaker"]
        assert gauge(port, GAUGE) == 2
        (folder / "model.onnx").write_bytes(whole)
        wait_until(lambda: healthz(port)[0] == 200, timeout_s=60, message="never healthy")
        results = [job.get(timeout=60) for job in jobs]
    assert len({r["content_id"] for r in results}) == 10
    assert stored_rows(database, "fork") == ({f"fork-{i}" for i in range(10)}, 0)


def test_a_model_that_hangs_opens_the_breaker_and_its_jobs_are_retried_until_it_answers(
    model_dir: Path, database: str, tmp_path: Path
) -> None:
    """A model call that never returns raises nothing: after ``MODQ_MODEL_CALL_TIMEOUT_S``
    the batcher's watchdog fails its jobs with ``ModelHung`` (retried, not failed, not lost),
    the breaker opens, ``/healthz`` answers 503 and ``modq_stats`` says so; once the model
    answers again a probe closes the breaker and every job is stored once. Before the
    watchdog, ``/healthz`` said 200 throughout and the breaker never opened."""
    events_file, hang, port = tmp_path / "events", tmp_path / "model-hangs", free_port()
    env = {
        **fault_env(events=events_file, hang=hang, fallback="none", metrics_port=port),
        "MODQ_DATABASE_URL": database,
    }
    with running_worker(env, log_dir=tmp_path, threads=4) as worker:
        assert moderate.delay(content_id="hang-0", content=text(0)).get(timeout=60)
        hang.touch()  # every model call hangs from now on
        jobs = [moderate.delay(content_id=f"hang-{i}", content=text(i)) for i in range(1, 11)]
        wait_until(lambda: breaker_open(port), timeout_s=60, message="breaker never opened")
        status, body = healthz(port)
        assert status == 503 and body["status"] == "unhealthy"
        assert "ModelHung" in body["checks"]["model_breaker"], body
        assert "jobs parked" in body["checks"]["model_breaker"]
        assert "hung model call" in body["checks"]["model_calls"], body  # still stuck
        assert gauge(port, GAUGE) == 2
        stats = worker.stats()  # `celery inspect modq_stats`
        assert stats["model_breaker"] in ("open", "half_open")
        assert "ModelHung" in stats["model_breaker_last_error"]
        assert stats["model_hung_calls"] >= 1 and stats["model_hung_calls_stuck"] >= 1
        wait_until(lambda: jobs_retried(port) >= 1, timeout_s=30, message="nothing retried")
        assert all(job.state in ("PENDING", "RETRY") for job in jobs)  # parked, not failed
        assert events(events_file, "hang") >= 1

        hang.unlink()  # the model answers again; the stuck calls return
        wait_until(lambda: healthz(port)[0] == 200, timeout_s=60, message="never healthy")
        assert worker.stats()["model_hung_calls_stuck"] == 0
        results = [job.get(timeout=90) for job in jobs]
    assert {r["content_id"] for r in results} == {f"hang-{i}" for i in range(1, 11)}
    assert stored_rows(database, "hang") == ({f"hang-{i}" for i in range(11)}, 0)


@pytest.mark.long
@pytest.mark.slow
def test_the_fault_scenario_loses_nothing(tmp_path: Path) -> None:
    """``bench.faults.model_failure`` as ``make faults --quick`` runs it."""
    from bench.faults.model_failure import run

    rows = run(tmp_path, quick=True)
    assert len(rows) == 2
    for row in rows:
        assert (row.lost, row.duplicated, row.caller_errors) == (0, 0, 0), row
        assert row.stored == row.sent > 0, row
        assert row.extra["healthz_while_open"] == 503, row
        assert row.extra["breaker_gauge_while_open"] == 2, row
        assert len(row.extra["model_versions"]) == 1, row  # type: ignore[arg-type]
    gpu, corrupt = rows
    assert gpu.extra["served_by_fallback"] > 0  # type: ignore[operator]
    assert corrupt.extra["served_by_fallback"] == 0


def test_a_failed_model_call_reaches_the_job_as_model_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Engines raise their own untyped errors; a job sees ``ModelUnavailable`` (retried)."""
    from concurrent.futures import Future

    from modq.errors import ModelUnavailable
    from tasks import pipeline

    failed: Future[object] = Future()
    failed.set_exception(RuntimeError("[ONNXRuntimeError] : 1 : FAIL : CUDA failure 700"))
    with pytest.raises(ModelUnavailable, match="CUDA failure 700"):
        pipeline._scores(failed)
    monkeypatch.setattr(pipeline, "MODEL_WAIT_S", 0.01)
    with pytest.raises(ModelUnavailable, match="did not answer"):
        pipeline._scores(Future())  # a model that hangs


@pytest.mark.long
@pytest.mark.slow
def test_the_hang_scenario_loses_nothing(tmp_path: Path) -> None:
    """``bench.faults.model_hang`` as ``make faults --quick`` runs it."""
    from bench.faults.model_hang import run

    (row,) = run(tmp_path, quick=True)
    assert (row.lost, row.duplicated, row.caller_errors) == (0, 0, 0), row
    assert row.stored == row.sent > 0, row
    assert row.extra["healthz_while_open"] == 503, row
    assert row.extra["breaker_gauge_while_open"] == 2, row
    assert row.extra["hung_calls"] >= 1, row  # type: ignore[operator]
