"""Worker lifecycle: load the one shared model after fork, expose its counters, close it."""

from __future__ import annotations

import gc
import logging
import os
from typing import Any

from celery.signals import worker_process_init, worker_ready, worker_shutdown
from celery.worker.control import inspect_command

from modq.errors import ModerationError

log = logging.getLogger(__name__)


def _preload() -> None:
    from tasks.pipeline import get_pipeline

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


@worker_shutdown.connect
def _close(**_: Any) -> None:
    from gpu_worker.runtime import shutdown_engine

    shutdown_engine()


@inspect_command(name="modq_stats")
def modq_stats(state: Any) -> dict[str, Any]:
    """`celery -A tasks inspect modq_stats`: model calls, batch and cache counters."""
    from gpu_worker import runtime
    from gpu_worker.runtime import current_engine
    from tasks.pipeline import current_pipeline

    engine = current_engine()
    pipeline = current_pipeline()
    stats: dict[str, Any] = {"model_loaded": engine is not None, "pid": os.getpid()}
    if engine is not None:
        backend, batcher = engine.backend, engine.batcher.stats
        stats.update(
            model_name=engine.model.name,
            model_version=engine.model.version,
            model_digest=engine.model.digest,
            model_swaps=runtime.swaps_done,
            device=backend.device,
            model_calls=backend.model_calls,
            texts_scored=backend.texts_scored,
            batches=batcher.batches,
            rows_deduplicated=batcher.rows_deduplicated,
            padded_tokens=batcher.padded_tokens,
            real_tokens=batcher.real_tokens,
        )
    from tasks import heap

    stats["heap_trims"] = heap.trims_done
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
        stats.update(
            cache_hits=cache.hits,
            cache_hits_local=cache.hits_local,
            cache_misses=cache.misses,
            cache_errors=cache.errors,
        )
    return stats
