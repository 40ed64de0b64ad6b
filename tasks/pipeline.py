"""The worker-side path of a job, without Celery: cache → model (batched) → policy → store.

Celery tasks call ``get_pipeline().moderate(...)``; tests and tools can call it directly.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from redis import Redis

from cache import ResultCache, cache_key, content_sha256, normalize_content
from db.results import ResultRepository
from db.session import make_engine
from gpu_worker.batcher import BatcherClosed
from gpu_worker.runtime import Engine, EngineConfig, get_engine
from modq.schemas import ModerationRequest, ModerationResult, Priority
from modq.settings import Settings, get_settings
from policy import Policy, decide, load_policy

MODEL_WAIT_S = 120.0  # a batch that has not answered by then is treated as failed
SWAP_ATTEMPTS = 3  # a job that meets this many swaps in a row fails (and is retried)


def engine_config(settings: Settings) -> EngineConfig:
    return EngineConfig(
        model_dir=settings.model_dir,
        model_uri=settings.model_uri,
        mlflow_uri=settings.mlflow_uri,
        mlflow_artifact_root=settings.mlflow_artifact_root,
        model_cache_dir=settings.model_cache_dir,
        poll_interval_s=settings.model_poll_interval_s,
        device=settings.device,
        backend=settings.backend,
        intra_op_threads=settings.ort_intra_op_threads,
        max_batch_size=settings.max_batch_size,
        max_batch_tokens=settings.max_batch_tokens,
        max_wait_ms=settings.max_wait_ms,
        batch_overhead_tokens=settings.batch_overhead_tokens,
    )


class ModerationPipeline:
    """One per worker process: holds the policy, the cache client and the repository."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.policy: Policy = load_policy(settings.policy_path)
        self.cache = ResultCache(
            Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5),
            ttl_s=settings.cache_ttl_s,
            lru_items=settings.cache_lru_items,
        )
        self._database = make_engine(settings.database_url)
        self.results = ResultRepository(self._database)
        self._engine_config = engine_config(settings)

    def close(self) -> None:
        """Release database and Redis connections (the shared model stays loaded)."""
        self._database.dispose()
        self.cache.close()

    def engine(self) -> Engine:
        return get_engine(self._engine_config)

    def moderate(
        self, requests: Sequence[ModerationRequest], *, enqueued_at_s: float | None = None
    ) -> list[ModerationResult]:
        """Decide every request; results are stored (SQL, then cache) before returning.

        A model swap between taking the engine and submitting to it closes that engine's
        batcher: the job then simply runs on the new engine.
        """
        for _ in range(SWAP_ATTEMPTS - 1):
            try:
                return self._moderate_on(self.engine(), requests, enqueued_at_s)
            except BatcherClosed:
                continue
        return self._moderate_on(self.engine(), requests, enqueued_at_s)

    def _moderate_on(
        self,
        engine: Engine,
        requests: Sequence[ModerationRequest],
        enqueued_at_s: float | None,
    ) -> list[ModerationResult]:
        started_s = time.time()
        model = engine.model  # the stamp: the version of the engine that scores this job
        categories = engine.backend.categories
        texts = [normalize_content(r.content) for r in requests]
        digests = [content_sha256(t) for t in texts]
        keys = [
            cache_key(
                self.settings.cache_key_prefix, d, model.name, model.version, self.policy.version
            )
            for d in digests
        ]
        cached = self.cache.get_many(keys)
        misses = [i for i, hit in enumerate(cached) if hit is None]
        scores_by_index: dict[int, dict[str, float]] = {}
        if misses:
            urgent = any(requests[i].priority is Priority.URGENT for i in misses)
            future = engine.batcher.submit([texts[i] for i in misses], urgent=urgent)
            matrix = future.result(timeout=MODEL_WAIT_S)
            for row, index in enumerate(misses):
                scores_by_index[index] = {
                    c: round(float(s), 6) for c, s in zip(categories, matrix[row], strict=True)
                }
        now = datetime.now(UTC).isoformat()
        since_s = enqueued_at_s if enqueued_at_s is not None else started_s
        latency_ms = round((time.time() - since_s) * 1000.0, 3)
        results: list[ModerationResult] = []
        for i, request in enumerate(requests):
            hit = cached[i]
            scores = dict(hit["scores"]) if hit is not None else scores_by_index[i]
            outcome = decide(scores, self.policy)
            results.append(
                ModerationResult(
                    content_id=request.content_id,
                    decision=outcome.decision,
                    scores=scores,
                    tripped=outcome.reasons,
                    unscored_categories=outcome.unscored_categories,
                    model_name=model.name,
                    model_version=model.version,
                    policy_version=self.policy.version,
                    variant=None,
                    cache_hit=hit is not None,
                    latency_ms=latency_ms,
                    content_sha256=digests[i],
                    created_at=now,
                    priority=request.priority,
                    user_id=request.user_id,
                )
            )
        self.results.store_many(results)
        self.cache.set_many({keys[i]: {"scores": results[i].scores} for i in misses})
        return results


_pipeline: ModerationPipeline | None = None
_pipeline_pid = 0
_lock = threading.Lock()


def get_pipeline() -> ModerationPipeline:
    """This process's pipeline (built after fork, once)."""
    global _pipeline, _pipeline_pid
    with _lock:
        if _pipeline is None or _pipeline_pid != os.getpid():
            _pipeline = ModerationPipeline(get_settings())
            _pipeline_pid = os.getpid()
        return _pipeline


def current_pipeline() -> ModerationPipeline | None:
    """The pipeline if this process has built one, else None (never builds)."""
    return _pipeline if _pipeline is not None and _pipeline_pid == os.getpid() else None
