"""What the worker's Prometheus metrics cost per job and per model call.

    python -m bench.worker_metrics [--jobs 20000] [--model-dir models/current]

Times the calls a served job makes (cache lookup count, decision and tripped category, job
started/finished) and the call a model batch makes (``after_batch``), in-process registry
(threads pool) and multiprocess files (prefork children), against the baseline of one text
through the real model alone (tokenize + run, batch of 1).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from gpu_worker.batcher import BatchReport
from modq.schemas import Decision, ModerationResult, Reason
from tasks.worker_metrics import MULTIPROC_ENV

REPEATS = 5


def _result() -> ModerationResult:
    return ModerationResult(
        content_id="c1",
        decision=Decision.FLAG,
        scores={"harassment": 0.7},
        tripped=[Reason("harassment", 0.7, 0.5, Decision.FLAG)],
        unscored_categories=[],
        model_name="modq-text",
        model_version="1",
        policy_version="v1",
        variant=None,
        cache_hit=False,
        latency_ms=1.0,
        content_sha256="0" * 64,
        created_at="2026-01-01T00:00:00+00:00",
    )


def _best_us(call: Callable[[], object], count: int) -> float:
    """Best of REPEATS runs, microseconds per call."""
    runs = []
    for _ in range(REPEATS):
        started_s = time.perf_counter()
        for _ in range(count):
            call()
        runs.append((time.perf_counter() - started_s) / count * 1e6)
    return min(runs)


def _costs(jobs: int, *, multiprocess: bool) -> tuple[float, float]:
    from prometheus_client import CollectorRegistry
    from prometheus_client import values as prometheus_values

    from tasks.worker_metrics import WorkerMetrics

    if multiprocess:
        os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="modq-bench-metrics-")
        prometheus_values.ValueClass = prometheus_values.get_value_class()
    metrics = WorkerMetrics(
        None if multiprocess else CollectorRegistry(), multiprocess=multiprocess
    )
    results = [_result()]
    report = BatchReport(32, 30, 30 * 64, 1500, 0.02, False, False)

    def job() -> None:
        metrics.job_started()
        metrics.cache_lookups(hits=0, misses=1)
        metrics.served(results)
        metrics.job_finished("modq.moderate", "SUCCESS")

    return _best_us(job, jobs), _best_us(lambda: metrics.after_batch(report), jobs)


def _model_us(model_dir: Path, count: int) -> float:
    from gpu_worker.backends.onnx import OnnxBackend

    backend = OnnxBackend(model_dir, intra_op_threads=1)
    text = ["a typical comment of a dozen words or so, neither long nor short"]
    backend.score(text)  # warm up
    return _best_us(lambda: backend.score(text), count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--model-dir", type=Path, default=Path("models/current"))
    args = parser.parse_args()
    model_us = _model_us(args.model_dir, 200)
    threads_job, threads_batch = _costs(args.jobs, multiprocess=False)
    try:
        prefork_job, prefork_batch = _costs(args.jobs, multiprocess=True)
    finally:
        shutil.rmtree(os.environ.pop(MULTIPROC_ENV, ""), ignore_errors=True)
    print(f"baseline: one text through the model alone       {model_us:8.1f} µs")
    print("| registry | per job (µs) | per model call (µs) | per job / one-text model call |")
    print("| --- | ---: | ---: | ---: |")
    for name, job_us, batch_us in (
        ("in-process (threads pool)", threads_job, threads_batch),
        ("multiprocess files (prefork)", prefork_job, prefork_batch),
    ):
        print(f"| {name} | {job_us:.1f} | {batch_us:.1f} | {job_us / model_us:.4f} |")
    print(f"(best of {REPEATS} runs of {args.jobs} calls each)")


if __name__ == "__main__":
    main()
