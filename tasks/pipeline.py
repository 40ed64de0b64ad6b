"""The worker-side path of a job, without Celery: cache → model (batched) → policy → store.

Celery tasks call ``get_pipeline().moderate(...)``; tests and tools can call it directly.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from redis import Redis
from sqlalchemy import Engine as SqlEngine

from cache import ResultCache, cache_key, content_sha256, normalize_content
from cache.keys import original_span
from db.assignments import Assignment
from db.group_commit import GroupCommitter
from db.results import ResultRepository
from db.session import make_engine
from db.user_history import UserHistoryRepository
from experiments.assignment import unit_of
from gpu_worker.batcher import BatcherClosed, describe_error
from gpu_worker.guard import FALLBACK, GuardConfig
from gpu_worker.language import detect_language
from gpu_worker.model_source import ResolvedModel
from gpu_worker.runtime import (
    Engine,
    EngineConfig,
    current_engine,
    get_engine,
    get_variant_engine,
    retire_variant_engines,
)
from modq.errors import ModelUnavailable, ModerationError
from modq.experiment import Experiment, Variant
from modq.schemas import ModerationRequest, ModerationResult, Priority, Reason
from modq.settings import Settings, get_settings
from policy import Policy, UserFeatures, apply_user_history, decide, load_policy
from policy.carried import ServedPolicy, policy_for_model
from policy.language import LanguageGuess, apply_language_rule
from policy.user_history import describe as describe_user_features
from tasks import storage_breaker
from tasks.routing import ExperimentRouter, PolicyBook
from tasks.user_features import UserFeatureSource
from tasks.worker_metrics import metrics

log = logging.getLogger(__name__)

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
        call_timeout_s=settings.model_call_timeout_s,
        guard=GuardConfig(
            failure_threshold=settings.model_breaker_failures,
            window_s=settings.model_breaker_window_s,
            probe_interval_s=settings.model_probe_interval_s,
            fallback=settings.model_fallback,
        ),
    )


StoreGroup = tuple[list[ModerationResult], list[Assignment]]  # one job's rows


@dataclass(slots=True)
class ShadowWork:
    """Requests a shadow variant must score after the caller has its answer."""

    experiment_id: str
    variant: str
    requests: list[ModerationRequest]
    units: list[str]


@dataclass(slots=True)
class Scored:
    """Results of one group of requests on one engine, and what to cache for them."""

    results: list[ModerationResult]
    cache_writes: dict[str, dict[str, Any]]


class ModerationPipeline:
    """One per worker process: holds the policies, the cache client, the repositories and the
    A/B router."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.policy: Policy = load_policy(settings.policy_path)
        self.policies = PolicyBook(self.policy, Path(settings.policy_path).parent)
        # MODQ_POLICY_PATH, when set, is served with every model; else each model's own
        self._configured_policy = (
            settings.policy_path if "policy_path" in settings.model_fields_set else None
        )
        self._served_policies: dict[tuple[Path, str], ServedPolicy] = {}
        self._served_lock = threading.Lock()
        self.cache = ResultCache(
            Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5),
            ttl_s=settings.cache_ttl_s,
            lru_items=settings.cache_lru_items,
        )
        self._database = make_engine(settings.database_url)
        self.results = ResultRepository(self._database)
        # the database breaker: after repeated failed writes the worker stops consuming
        self.storage = storage_breaker.install(self._database, settings)
        # concurrent jobs share transactions; each still returns only once its rows are in
        self._writer: GroupCommitter[StoreGroup] = GroupCommitter(self._store_groups)
        self.router = ExperimentRouter(self._database, settings.experiment_refresh_s)
        self.user_features = UserFeatureSource(UserHistoryRepository(self._database))
        self._engine_config = engine_config(settings)
        self._serving_experiment: str | None = None

    def close(self) -> None:
        """Release database and Redis connections (the shared model stays loaded)."""
        self._writer.close()
        self.storage.close()
        self._database.dispose()
        self.cache.close()

    def _store_groups(self, groups: Sequence[StoreGroup]) -> int:
        """One group transaction, through the database breaker (fails fast while open)."""
        return self.storage.call(lambda: self.results.store_groups(groups))

    @property
    def database(self) -> SqlEngine:
        """This process's database engine (shared by the repositories)."""
        return self._database

    def engine(self) -> Engine:
        return get_engine(self._engine_config)

    def served_policy(self, model: ResolvedModel) -> ServedPolicy:
        """The policy the primary model ``model`` is served under (policy/carried.py): read
        once per model version; a mismatch is logged then, and reported by /healthz and
        modq_stats while that model serves."""
        key = (model.folder, model.digest)
        served = self._served_policies.get(key)
        if served is not None:
            return served
        with self._served_lock:
            served = self._served_policies.get(key)
            if served is None:
                served = policy_for_model(
                    model.folder,
                    model.digest,
                    configured=self._configured_policy,
                    default=self.settings.policy_path,
                )
                if served.mismatch is not None:
                    log.error("modq: serving degraded: %s", served.mismatch)
                self._served_policies[key] = served
        return served

    def current_policy(self) -> ServedPolicy | None:
        """The policy of the primary model serving now (None before it loads)."""
        engine = current_engine()
        return self.served_policy(engine.model) if engine is not None else None

    def variant_engine(self, variant: Variant) -> Engine:
        """The engine of an A/B variant's model (the primary engine if it is the same)."""
        return get_variant_engine(replace(self._engine_config, model_uri=variant.model_uri))

    def moderate(
        self, requests: Sequence[ModerationRequest], *, enqueued_at_s: float | None = None
    ) -> list[ModerationResult]:
        """Decide every request; results are stored (SQL, then cache) before returning."""
        results, _ = self.moderate_routed(requests, enqueued_at_s=enqueued_at_s)
        return results

    def moderate_routed(
        self, requests: Sequence[ModerationRequest], *, enqueued_at_s: float | None = None
    ) -> tuple[list[ModerationResult], list[ShadowWork]]:
        """Decide every request on the variant the running experiment assigns it (or the
        worker's own model); store results and assignments in one transaction, then cache.
        Returns the results in request order, and the shadow work still to be sent."""
        experiment = self.router.current()
        self._follow(experiment)
        routes = self.router.routes(experiment, requests)
        ordered: list[ModerationResult | None] = [None] * len(requests)
        assignments: list[Assignment] = []
        cache_writes: dict[str, dict[str, Any]] = {}
        pendings = [  # every group goes to its model before any is waited on
            self._submit(route.variant, [requests[i] for i in route.positions]) for route in routes
        ]
        for route, scored in zip(routes, self._collect(pendings, enqueued_at_s), strict=True):
            cache_writes.update(scored.cache_writes)
            for position, unit, result in zip(
                route.positions, route.units, scored.results, strict=True
            ):
                ordered[position] = result
                if experiment is not None and route.variant is not None:
                    result.variant = route.variant.name
                    result.extra["experiment"] = experiment.id
                    assignments.append(_assignment(experiment.id, route.variant, unit, result))
        results = [r for r in ordered if r is not None]
        self._writer.submit((results, assignments))
        self.cache.set_many(cache_writes)
        metrics().served(results)  # stored: a retry never counts a result twice
        if experiment is None or not experiment.shadow_variants:
            return results, []
        units = [unit_of(experiment, r.content_id, r.user_id) for r in requests]
        shadows = [
            ShadowWork(experiment.id, variant.name, list(requests), units)
            for variant in experiment.shadow_variants
        ]
        return results, shadows

    def moderate_shadow(
        self,
        experiment_id: str,
        variant_name: str,
        requests: Sequence[ModerationRequest],
        units: Sequence[str],
        *,
        enqueued_at_s: float | None = None,
    ) -> int:
        """Score requests on a shadow variant and record its assignments; nothing reaches a
        caller and no result row is written. Work for an experiment that no longer runs is
        dropped (logged). Returns how many assignments were recorded."""
        experiment = self.router.current()
        if experiment is None or experiment.id != experiment_id:
            log.info("modq: dropping shadow work of %s (not running here)", experiment_id)
            return 0
        variant = experiment.variant(variant_name)
        scored = self._score(variant, requests, enqueued_at_s)
        assignments = [
            _assignment(experiment_id, variant, unit, result)
            for unit, result in zip(units, scored.results, strict=True)
        ]
        self._writer.submit(([], assignments))
        self.cache.set_many(scored.cache_writes)
        return len(assignments)

    def _follow(self, experiment: Experiment | None) -> None:
        """Free the variant engines of an experiment that stopped."""
        experiment_id = experiment.id if experiment is not None else None
        if experiment_id == self._serving_experiment:
            return
        keep = [
            replace(self._engine_config, model_uri=v.model_uri)
            for v in (experiment.variants if experiment is not None else ())
        ]
        retire_variant_engines(keep)
        self._serving_experiment = experiment_id

    def _score(
        self,
        variant: Variant | None,
        requests: Sequence[ModerationRequest],
        enqueued_at_s: float | None,
    ) -> Scored:
        """Score one group of requests on the variant's engine (or the worker's own)."""
        pending = self._submit(variant, requests)
        return self._collect([pending], enqueued_at_s)[0]

    def _submit(self, variant: Variant | None, requests: Sequence[ModerationRequest]) -> _Pending:
        """Look the requests up in the cache and hand the misses to the variant's batcher
        (without waiting). A model swap between taking the engine and submitting to it closes
        that engine's batcher: the requests then simply go to the new engine."""
        for attempt in range(SWAP_ATTEMPTS):
            engine = self.engine() if variant is None else self.variant_engine(variant)
            policy = (
                self.served_policy(engine.model).policy
                if variant is None
                else self.policies.get(variant.policy_version)
            )
            try:
                return self._submit_on(engine, policy, requests)
            except BatcherClosed as exc:
                if attempt == SWAP_ATTEMPTS - 1:
                    raise ModelUnavailable(f"the model was swapped {SWAP_ATTEMPTS} times") from exc
        raise AssertionError("unreachable")

    def _submit_on(
        self, engine: Engine, policy: Policy, requests: Sequence[ModerationRequest]
    ) -> _Pending:
        model = engine.model  # the stamp: the version of the engine that scores this job
        texts = [normalize_content(r.content) for r in requests]
        digests = [content_sha256(t) for t in texts]
        keys = [
            cache_key(self.settings.cache_key_prefix, d, model.name, model.version, policy.version)
            for d in digests
        ]
        cached = self.cache.get_many(keys)
        misses = [i for i, hit in enumerate(cached) if hit is None]
        metrics().cache_lookups(hits=len(keys) - len(misses), misses=len(misses))
        future = None
        languages: dict[int, LanguageGuess] = {}
        if misses:
            urgent = any(requests[i].priority is Priority.URGENT for i in misses)
            future = engine.batcher.submit_scored([texts[i] for i in misses], urgent=urgent)
            languages = {i: detect_language(texts[i]) for i in misses}  # beside the model
        return _Pending(
            model,
            engine.role,
            engine.backend.device,
            engine.backend.categories,
            policy,
            requests,
            digests,
            keys,
            cached,
            misses,
            future,
            languages,
        )

    def _collect(self, pendings: Sequence[_Pending], enqueued_at_s: float | None) -> list[Scored]:
        """Wait for every group's scores, then decide. All groups of one job share one latency:
        the time until the whole job was answered (a group is never charged for waiting on
        another)."""
        started_s = time.time()
        # the user history lookup (policy [user_history]) overlaps the model's work
        features = [self.user_features.for_requests(p.policy, p.requests) for p in pendings]
        matrices = [_scores(p.future) if p.future else None for p in pendings]
        now = datetime.now(UTC).isoformat()
        since_s = enqueued_at_s if enqueued_at_s is not None else started_s
        latency_ms = round((time.time() - since_s) * 1000.0, 3)
        return [
            self._decide(pending, matrix, latency_ms, now, users)
            for pending, matrix, users in zip(pendings, matrices, features, strict=True)
        ]

    @staticmethod
    def _decide(
        pending: _Pending,
        matrix: Any,
        latency_ms: float,
        now: str,
        users: Sequence[UserFeatures | None],
    ) -> Scored:
        scores_by_index: dict[int, dict[str, float]] = {}
        spans_by_index: dict[int, dict[str, list[int]]] = {}
        for row, index in enumerate(pending.misses):
            scores_by_index[index] = {
                c: round(float(s), 6)
                for c, s in zip(pending.categories, matrix.scores[row], strict=True)
            }
            spans_by_index[index] = {
                c: [int(span[0]), int(span[1])]
                for c, span in zip(pending.categories, matrix.spans[row], strict=True)
            }
        model, policy = pending.model, pending.policy
        results: list[ModerationResult] = []
        for i, request in enumerate(pending.requests):
            hit = pending.cached[i]
            scores = dict(hit["scores"]) if hit is not None else scores_by_index[i]
            spans = (hit.get("spans") or {}) if hit is not None else spans_by_index[i]
            language = pending.languages.get(i) or cached_language(hit, request.content)
            user = users[i]
            applied_policy, applied = apply_user_history(policy, user)
            outcome = apply_language_rule(
                decide(scores, applied_policy), language, applied_policy.language
            )
            results.append(
                ModerationResult(
                    content_id=request.content_id,
                    decision=outcome.decision,
                    scores=scores,
                    tripped=with_spans(outcome.reasons, spans, request.content),
                    unscored_categories=outcome.unscored_categories,
                    model_name=model.name,
                    model_version=model.version,
                    policy_version=policy.version,
                    variant=None,
                    cache_hit=hit is not None,
                    latency_ms=latency_ms,
                    content_sha256=pending.digests[i],
                    created_at=now,
                    priority=request.priority,
                    user_id=request.user_id,
                    language=language.code,
                    extra=(
                        {}
                        if user is None
                        else {"user_features": describe_user_features(user, applied)}
                    ),
                )
            )
            if pending.role == FALLBACK and hit is None:  # scored by the fallback engine
                results[-1].extra["engine"] = {"role": FALLBACK, "device": pending.device}
        writes = {
            pending.keys[i]: {
                "scores": results[i].scores,
                "spans": spans_by_index[i],
                "language": language_entry(pending.languages[i]),
            }
            for i in pending.misses
        }
        return Scored(results, writes)


@dataclass(slots=True)
class _Pending:
    """One group of requests handed to a batcher: what deciding them needs once scored."""

    model: ResolvedModel
    role: str  # the engine's: primary, or the fallback serving while the breaker is open
    device: str
    categories: Sequence[str]
    policy: Policy
    requests: Sequence[ModerationRequest]
    digests: list[str]
    keys: list[str]
    cached: list[dict[str, Any] | None]
    misses: list[int]
    future: Future[Any] | None
    languages: dict[int, LanguageGuess]  # of the misses (a hit's comes from the cache)


def language_entry(guess: LanguageGuess) -> dict[str, Any]:
    """A language guess as the cache keeps it."""
    return {"code": guess.code, "confidence": guess.confidence, "reliable": guess.reliable}


def cached_language(hit: dict[str, Any] | None, content: str) -> LanguageGuess:
    """The guess a cache entry kept; detected afresh for an entry written before it did."""
    entry = (hit or {}).get("language")
    if isinstance(entry, dict):
        try:
            return LanguageGuess(
                str(entry["code"]), float(entry["confidence"]), bool(entry["reliable"])
            )
        except (KeyError, TypeError, ValueError):
            pass
    return detect_language(normalize_content(content))


def with_spans(
    reasons: Sequence[Reason], spans: Mapping[str, Sequence[int]], content: str
) -> list[Reason]:
    """Each reason with the span of the text that gave its score, as offsets into the content
    the caller sent (the model scores its normalized form: ``cache.keys.original_span``)."""
    out = []
    for reason in reasons:
        span = spans.get(reason.category)
        if span is not None:
            reason = replace(reason, span=original_span(content, (span[0], span[1])))
        out.append(reason)
    return out


def _scores(future: Future[Any]) -> Any:
    """A batch's scores; a model that failed or hung is ``ModelUnavailable`` (retried), never
    an engine's own error type."""
    try:
        return future.result(timeout=MODEL_WAIT_S)
    except ModerationError:
        raise
    except TimeoutError as exc:
        raise ModelUnavailable(f"the model did not answer within {MODEL_WAIT_S:.0f} s") from exc
    except Exception as exc:  # onnxruntime, torch and CUDA raise their own untyped errors
        raise ModelUnavailable(f"model call failed: {describe_error(exc)}") from exc


def _assignment(
    experiment_id: str, variant: Variant, unit: str, result: ModerationResult
) -> Assignment:
    return Assignment(
        experiment_id=experiment_id,
        variant=variant.name,
        shadow=variant.shadow,
        unit=unit,
        content_id=result.content_id,
        decision=result.decision.value,
        scores=result.scores,
        latency_ms=result.latency_ms,
        model_name=result.model_name,
        model_version=result.model_version,
        policy_version=result.policy_version,
        cache_hit=result.cache_hit,
        assigned_at=datetime.fromisoformat(result.created_at),
    )


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
