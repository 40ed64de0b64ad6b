"""A worker process's own Prometheus metrics, updated where the work happens.

The batcher reports each model call (``gpu_worker.runtime.add_hooks``), the pipeline its cache
lookups and decisions, Celery's task signals the jobs; ``tasks.worker_server`` serves them::

    modq_worker_batch_size                 histogram  rows per model call (after de-duplication)
    modq_worker_batch_padded_tokens        histogram  rows x longest row per model call
    modq_worker_model_latency_seconds      histogram  wall time of each model call
    modq_worker_model_failures_total       counter    model calls that raised
    modq_worker_real_tokens_total          counter    tokens before padding (padding efficiency:
                                                      this / modq_worker_batch_padded_tokens_sum)
    modq_worker_deduplicated_texts_total   counter    texts answered by an identical row
    modq_worker_cache_hits_total           counter    texts answered by the result cache
    modq_worker_cache_misses_total         counter    texts that went to the model
    modq_worker_decisions_total            counter    {decision, model_name, model_version,
                                                       policy_version} of served results
    modq_worker_tripped_total              counter    {category, action, model_name,
                                                       model_version, policy_version}
    modq_worker_jobs_in_flight             gauge      tasks running now
    modq_worker_jobs_total                 counter    {task, state} finished tasks
    modq_worker_model_loaded               gauge      1 once the primary model serves
    modq_worker_model_info                 info       {name, version, device, backend,
                                                       policy_version} of the primary model
    modq_worker_model_breaker_state        gauge      the primary model's circuit breaker:
                                                      0 closed, 1 half-open, 2 open
    modq_worker_fallback_texts_total       counter    texts scored by the CPU fallback engine
                                                      while the breaker was open

Under the prefork pool the children write to prometheus-client's multiprocess files
(``PROMETHEUS_MULTIPROC_DIR``, set by the pool's parent before it forks) and the parent serves
their sum; there ``modq_worker_model_info`` is a gauge of the same name and labels (info
metrics do not exist in multiprocess mode): 1 for a model a live child serves, 0 for one it
served before a swap.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client import values as prometheus_values

from gpu_worker.batcher import BatchReport
from gpu_worker.runtime import Engine
from modq.circuit import BreakerSnapshot
from modq.schemas import ModerationResult

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
PADDED_TOKEN_BUCKETS = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
MODEL_LATENCY_BUCKETS_S = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0
)  # fmt: skip
MODEL_LABELS = ("name", "version", "device", "backend", "policy_version")
RESULT_LABELS = ("model_name", "model_version", "policy_version")


def multiprocess_dir() -> str | None:
    """The multiprocess folder when this process writes there instead of its own memory."""
    return os.environ.get(MULTIPROC_ENV) or None


class WorkerMetrics:
    """The metrics of one worker process (under prefork: of one child)."""

    def __init__(self, registry: CollectorRegistry | None, *, multiprocess: bool = False) -> None:
        """``registry``: where to register (None under multiprocess: the parent collects the
        files)."""
        self.multiprocess = multiprocess
        self._registry = registry
        self.batch_size = Histogram(
            "modq_worker_batch_size",
            "Rows per model call, after de-duplication.",
            buckets=BATCH_SIZE_BUCKETS,
            registry=registry,
        )
        self.padded_tokens = Histogram(
            "modq_worker_batch_padded_tokens",
            "Padded tokens per model call (rows x longest row): what the model computed.",
            buckets=PADDED_TOKEN_BUCKETS,
            registry=registry,
        )
        self.model_latency = Histogram(
            "modq_worker_model_latency_seconds",
            "Wall time of one model call.",
            buckets=MODEL_LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.model_failures = Counter(
            "modq_worker_model_failures", "Model calls that raised.", registry=registry
        )
        self.real_tokens = Counter(
            "modq_worker_real_tokens",
            "Tokens sent to the model, before padding.",
            registry=registry,
        )
        self.deduplicated = Counter(
            "modq_worker_deduplicated_texts",
            "Texts answered by an identical row of the same model call.",
            registry=registry,
        )
        self.cache_hits = Counter(
            "modq_worker_cache_hits", "Texts answered by the result cache.", registry=registry
        )
        self.cache_misses = Counter(
            "modq_worker_cache_misses",
            "Texts the result cache sent to the model.",
            registry=registry,
        )
        self.decisions = Counter(
            "modq_worker_decisions",
            "Results served, by decision, model and policy version.",
            ["decision", *RESULT_LABELS],
            registry=registry,
        )
        self.tripped = Counter(
            "modq_worker_tripped",
            "Categories that tripped in served results, by the action they called for.",
            ["category", "action", *RESULT_LABELS],
            registry=registry,
        )
        self.jobs_in_flight = Gauge(
            "modq_worker_jobs_in_flight",
            "Tasks running now.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.jobs = Counter(
            "modq_worker_jobs",
            "Tasks finished, by task and state.",
            ["task", "state"],
            registry=registry,
        )
        self.model_loaded = Gauge(
            "modq_worker_model_loaded",
            "1 once the primary model serves.",
            registry=registry,
            multiprocess_mode="livemax",
        )
        self._info = (
            Gauge(
                "modq_worker_model_info",
                "The primary model a live process serves (1) or served before a swap (0).",
                MODEL_LABELS,
                registry=registry,
                multiprocess_mode="livemax",
            )
            if multiprocess
            else Info(
                "modq_worker_model", "The primary model this process serves.", registry=registry
            )
        )
        self.model_breaker_state = Gauge(
            "modq_worker_model_breaker_state",
            "The primary model's circuit breaker: 0 closed, 1 half-open, 2 open.",
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.fallback_texts = Counter(
            "modq_worker_fallback_texts",
            "Texts scored by the CPU fallback engine while the model's breaker was open.",
            registry=registry,
        )
        self._serving: tuple[str, ...] | None = None
        self._lock = threading.Lock()

    # --- where the work happens ---------------------------------------------------------
    def after_batch(self, report: BatchReport) -> None:
        """One model call (the batcher's ``after_batch`` hook)."""
        if report.failed:
            self.model_failures.inc()
            return
        self.batch_size.observe(report.rows)
        self.padded_tokens.observe(report.padded_tokens)
        self.model_latency.observe(report.model_s)
        self.real_tokens.inc(report.real_tokens)
        if report.texts > report.rows:
            self.deduplicated.inc(report.texts - report.rows)

    def cache_lookups(self, *, hits: int, misses: int) -> None:
        if hits:
            self.cache_hits.inc(hits)
        if misses:
            self.cache_misses.inc(misses)

    def served(self, results: Iterable[ModerationResult]) -> None:
        """Results handed to callers: their decisions and the categories that tripped."""
        for result in results:
            if "engine" in result.extra:  # scored by the fallback (pipeline._decide)
                self.fallback_texts.inc()
            labels = (result.model_name, result.model_version, result.policy_version)
            self.decisions.labels(result.decision.value, *labels).inc()
            for reason in result.tripped:
                self.tripped.labels(reason.category, reason.action.value, *labels).inc()

    def breaker_changed(self, snapshot: BreakerSnapshot) -> None:
        """The primary model's breaker changed state."""
        self.model_breaker_state.set(snapshot.state.gauge_value)

    def job_started(self) -> None:
        self.jobs_in_flight.inc()

    def job_finished(self, task: str, state: str) -> None:
        self.jobs_in_flight.dec()
        self.jobs.labels(task, state).inc()

    def serving(self, engine: Engine, policy_version: str) -> None:
        """The primary model that serves from now on (first load, or a swap)."""
        labels = {
            "name": engine.model.name,
            "version": engine.model.version,
            "device": engine.backend.device,
            "backend": engine.config.backend,
            "policy_version": policy_version,
        }
        with self._lock:
            if isinstance(self._info, Info):
                self._info.info(labels)
            else:
                if self._serving is not None:
                    self._info.labels(*self._serving).set(0)
                self._info.labels(**labels).set(1)
            self._serving = tuple(labels[name] for name in MODEL_LABELS)
            self.model_loaded.set(1)

    # --- reading back -------------------------------------------------------------------
    def totals(self) -> dict[str, float]:
        """This process's counters, for ``modq_stats`` (the same numbers /metrics shows)."""
        return {
            "batches": _sample(self.batch_size, "_count"),
            "rows": _sample(self.batch_size, "_sum"),
            "padded_tokens": _sample(self.padded_tokens, "_sum"),
            "real_tokens": _sample(self.real_tokens, "_total"),
            "rows_deduplicated": _sample(self.deduplicated, "_total"),
            "cache_hits": _sample(self.cache_hits, "_total"),
            "cache_misses": _sample(self.cache_misses, "_total"),
            "jobs_in_flight": _sample(self.jobs_in_flight, ""),
        }


def _sample(metric: Any, suffix: str) -> float:
    """The sum of a metric's samples named ``<name><suffix>`` in this process."""
    family = next(iter(metric.collect()))
    name = family.name + suffix
    return float(sum(s.value for s in family.samples if s.name == name))


_metrics: WorkerMetrics | None = None
_metrics_pid = 0
_registry: CollectorRegistry | None = None
_registry_pid = 0
_lock = threading.Lock()


def registry() -> CollectorRegistry:
    """This process's registry: its worker metrics and the process collectors (memory, CPU,
    open files, GC)."""
    global _registry, _registry_pid
    with _lock:
        if _registry is None or _registry_pid != os.getpid():
            from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR

            _registry, _registry_pid = CollectorRegistry(), os.getpid()
            for collector in (PROCESS_COLLECTOR, GC_COLLECTOR, PLATFORM_COLLECTOR):
                _registry.register(collector)
        return _registry


def metrics() -> WorkerMetrics:
    """This process's metrics, built on first use (after fork, in a prefork child)."""
    global _metrics, _metrics_pid
    if _metrics is not None and _metrics_pid == os.getpid():
        return _metrics
    shared = multiprocess_dir() is not None
    own = None if shared else registry()
    with _lock:
        if _metrics is None or _metrics_pid != os.getpid():
            if shared:  # chosen per process, whenever prometheus-client was first imported
                prometheus_values.ValueClass = prometheus_values.get_value_class()
            _metrics = WorkerMetrics(own, multiprocess=shared)
            _metrics_pid = os.getpid()
        return _metrics


def current_metrics() -> WorkerMetrics | None:
    """This process's metrics if it has built them, else None (never builds)."""
    return _metrics if _metrics is not None and _metrics_pid == os.getpid() else None


def install() -> None:
    """Feed this process's metrics from its engines (every model call, each model that starts
    serving). Idempotent; call before the model loads."""
    from gpu_worker.runtime import add_hooks

    add_hooks(after_batch=_after_batch, on_serving=_on_serving, on_breaker=_on_breaker)


def _after_batch(report: BatchReport) -> None:
    metrics().after_batch(report)


def _on_serving(engine: Engine) -> None:
    from tasks.pipeline import current_pipeline

    pipeline = current_pipeline()
    policy = pipeline.served_policy(engine.model).policy if pipeline is not None else None
    metrics().serving(engine, policy.version if policy is not None else "unknown")


def _on_breaker(snapshot: BreakerSnapshot) -> None:
    metrics().breaker_changed(snapshot)
