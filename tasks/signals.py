"""Worker lifecycle: load the one shared model after fork, serve its metrics and health,
expose its counters, close it."""

from __future__ import annotations

import gc
import logging
import os
from typing import Any

from celery.signals import (
    after_setup_logger,
    task_postrun,
    task_prerun,
    task_received,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
)
from celery.worker.control import inspect_command

from modq.errors import ModerationError

log = logging.getLogger(__name__)

STATS_FROM_METRICS = (  # modq_stats fields read from the process's Prometheus counters
    "batches",
    "rows_deduplicated",
    "padded_tokens",
    "real_tokens",
    "cache_hits",
    "cache_misses",
    "jobs_in_flight",
)


def _preload() -> None:
    from tasks.app import app
    from tasks.pipeline import get_pipeline
    from tasks.webhooks import consumes_only_webhooks

    if consumes_only_webhooks(app):  # `modq webhooks`: deliveries only, no model
        return
    from tasks.worker_metrics import install

    install()  # metrics follow the model from its first load
    try:
        engine = get_pipeline().engine()
    except ModerationError as exc:
        log.error("modq: model not loaded at start (%s); jobs will retry until it is", exc)
        return
    log.info(
        "modq: model %s %s loaded on %s in pid %d",
        engine.model.name,
        engine.model.version,
        engine.backend.device,
        os.getpid(),
    )


@worker_process_init.connect
def _load_in_child(**_: Any) -> None:
    """prefork pool: each child loads its own model after the fork."""
    _preload()


@worker_ready.connect
def _load_in_worker(sender: Any = None, **_: Any) -> None:
    """threads/solo pool: the worker process itself serves (no fork happens)."""
    pool = getattr(getattr(sender, "pool", None), "__class__", type(None)).__module__
    if "prefork" not in pool:
        _preload()


AUTOSCALE_REFUSED = (
    "modq: --autoscale needs a pool that can grow and shrink (prefork); the {pool} pool runs "
    "a fixed set of task threads around one shared model and exits at its first scale-up. "
    "Scale with more worker processes (`modq worker --processes N`) or more workers on queue "
    "age (docs/observability.md), or use `--pool prefork` with --autoscale."
)
FIXED_POOLS = {"celery.concurrency.thread": "threads", "celery.concurrency.solo": "solo"}


@worker_init.connect
def _refuse_autoscale(sender: Any = None, **_: Any) -> None:
    """Stop at start, with the reason, a worker asked to autoscale a pool that cannot."""
    if sender is None or not (getattr(sender, "options", None) or {}).get("autoscale"):
        return
    from celery.concurrency import get_implementation

    pool = get_implementation(sender.pool_cls).__module__
    if pool in FIXED_POOLS:
        # exit with the reason on stderr: Celery only logs a handler's Exception and goes on
        raise SystemExit(AUTOSCALE_REFUSED.format(pool=FIXED_POOLS[pool]))


@worker_init.connect
def _startup_checks(sender: Any = None, **_: Any) -> None:
    """Refuse a volatile broker; check the visibility timeout (tasks/startup_checks.py)."""
    if sender is None:
        return
    from modq.settings import get_settings
    from tasks.startup_checks import run_startup_checks

    run_startup_checks(sender.app, get_settings())


@worker_init.connect
def _state_db_folder(sender: Any = None, **_: Any) -> None:
    """The folder of the worker's state db (revoked ids kept across restarts) exists."""
    statedb = getattr(sender, "statedb", None)
    if statedb:
        from pathlib import Path

        Path(statedb).parent.mkdir(parents=True, exist_ok=True)


_server: Any = None  # this worker's metrics and health server, if MODQ_WORKER_METRICS_PORT


@worker_init.connect
def _serve_metrics(sender: Any = None, **_: Any) -> None:
    """Start /metrics and /healthz before the pool starts (a prefork parent must choose the
    children's multiprocess folder before it forks)."""
    global _server
    from modq.settings import get_settings

    settings = get_settings()
    if not settings.worker_metrics_port or sender is None:
        return
    from celery.concurrency import get_implementation

    from tasks import worker_server

    pool = get_implementation(sender.pool_cls).__module__
    host, port = settings.worker_metrics_host, settings.worker_metrics_port
    try:
        _server = worker_server.start(
            host=host, port=port, broker_url=sender.app.conf.broker_url, prefork="prefork" in pool
        )
    except OSError as exc:  # a worker its orchestrator cannot probe must not start silently
        raise SystemExit(
            f"modq: cannot serve worker metrics on {host}:{port} ({exc.strerror or exc}); "
            "set MODQ_WORKER_METRICS_PORT (or --metrics-port) to a free port, or 0 for none"
        ) from exc


@after_setup_logger.connect
def _mask_urls_in_logs(logger: Any = None, **_: Any) -> None:
    """Every worker log line has URL passwords masked (a net under the masked messages)."""
    from modq.redact_urls import install_log_masking

    install_log_masking(logger)


@task_received.connect
def _release_admission(sender: Any = None, request: Any = None, **_: Any) -> None:
    """A message left its queue: give back the items its producer charged against the bound."""
    from modq.broker.backpressure import release_delivery

    release_delivery(sender.app, getattr(request, "request_dict", None))


@task_prerun.connect
def _job_started(**_: Any) -> None:
    from tasks.worker_metrics import metrics

    metrics().job_started()


@task_postrun.connect
def _job_finished(sender: Any = None, state: str | None = None, **_: Any) -> None:
    from tasks.worker_metrics import metrics

    metrics().job_finished(getattr(sender, "name", "unknown"), state or "unknown")


@worker_process_shutdown.connect
def _child_exits(pid: int | None = None, **_: Any) -> None:
    """prefork: a child's live gauges (jobs in flight, model loaded) leave the sums."""
    from tasks.worker_metrics import multiprocess_dir

    path = multiprocess_dir()
    if path is not None and pid is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, path)


@worker_shutdown.connect
def _close(**_: Any) -> None:
    from gpu_worker.runtime import shutdown_engine

    shutdown_engine()
    if _server is not None:
        _server.stop()


def breaker_stats() -> dict[str, Any]:
    """The circuit breakers of this process: ``closed``, ``half_open`` or ``open``; whether a
    CPU fallback serves while the model's is open; its model calls that hung (ever, and
    still stuck now)."""
    from gpu_worker.runtime import model_guard
    from tasks import storage_breaker
    from tasks.worker_server import stuck_model_calls

    guard = model_guard()
    snapshot = guard.snapshot() if guard is not None else None
    return {
        "model_breaker": snapshot.state.value if snapshot is not None else "closed",
        "model_breaker_last_error": snapshot.last_error if snapshot is not None else None,
        "model_fallback": guard is not None and guard.serving_fallback() is not None,
        "model_hung_calls": guard.hung_calls if guard is not None else 0,
        "model_hung_calls_stuck": len(stuck_model_calls()),
        "storage_breaker": storage_breaker.current_state(),
    }


@inspect_command(name="modq_stats")
def modq_stats(state: Any) -> dict[str, Any]:
    """`celery -A tasks inspect modq_stats`: model calls, batch and cache counters (the batch
    and cache counts are the process's Prometheus counters: the numbers /metrics shows) and
    the circuit breakers' states."""
    from gpu_worker import runtime
    from gpu_worker.runtime import current_engine
    from tasks.pipeline import current_pipeline
    from tasks.worker_metrics import current_metrics

    engine = current_engine()
    pipeline = current_pipeline()
    stats: dict[str, Any] = {"model_loaded": engine is not None, "pid": os.getpid()}
    if engine is not None:
        backend = engine.backend
        stats.update(
            model_name=engine.model.name,
            model_version=engine.model.version,
            model_digest=engine.model.digest,
            model_swaps=runtime.swaps_done,
            device=backend.device,
            model_calls=backend.model_calls,
            texts_scored=backend.texts_scored,
        )
    metrics = current_metrics()
    totals = metrics.totals() if metrics is not None else {}
    for name in STATS_FROM_METRICS:
        stats[name] = int(totals.get(name, 0))
    from tasks import heap

    stats["heap_trims"] = heap.trims_done
    stats.update(breaker_stats())
    stats["python_objects"] = len(gc.get_objects())  # a leak shows here first
    stats["variant_models"] = [
        {
            "model_name": e.model.name,
            "model_version": e.model.version,
            "texts_scored": e.backend.texts_scored,
        }
        for e in runtime.variant_engines()
    ]
    if pipeline is not None:
        experiment = pipeline.router.current()
        stats["experiment"] = experiment.id if experiment is not None else None
        cache = pipeline.cache.stats
        stats.update(cache_hits_local=cache.hits_local, cache_errors=cache.errors)
        served = pipeline.current_policy()
        if served is not None:  # policy_mismatch: why the worker serves degraded, or None
            stats.update(served.describe())
    return stats
