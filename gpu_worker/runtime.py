"""The one shared model of a process, and its hot swap.

Loaded once, lazily, after fork (a forked child never inherits its parent's session). The
model comes from a source (a folder, or a registry alias); a watcher thread re-resolves the
source every ``poll_interval_s`` or when woken (`modq model promote` broadcasts a wake-up), and
when it names another version the engine is swapped *between batches*:

1. the new model loads beside the old one (jobs keep flowing on the old);
2. a new engine (new backend, new batcher) replaces the old one: new jobs go to it;
3. the old batcher is closed: what is pending on it still runs on the old model, and each job
   is stamped with the version of the engine it was submitted to, so stamps never lie;
4. the old engine is dropped, and its session freed.

A version that fails to load leaves the old model in service (logged, retried at next poll).

The primary engine is guarded by a circuit breaker (``gpu_worker.guard``): a model that keeps
failing is rested, its jobs served by a CPU fallback or parked at once, until a probe
succeeds.

Observers (``add_hooks``, ``gpu_worker.hooks``) see every model call of every engine, each
engine that starts serving as the primary model and each change of its breaker; tasks/ wires
them to Prometheus, this room knows no metrics.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from gpu_worker.backend import Backend
from gpu_worker.batcher import BatchHook, BatchReport, MicroBatcher
from gpu_worker.guard import FALLBACK, PRIMARY, GuardConfig, ModelGuard
from gpu_worker.hooks import add_hooks as add_hooks  # re-exported: the observers API
from gpu_worker.hooks import after_batch as _after_batch
from gpu_worker.hooks import breaker_changed as _breaker_changed
from gpu_worker.hooks import now_serving as _now_serving
from gpu_worker.hooks import remove_hooks as remove_hooks
from gpu_worker.model_source import FolderSource, RegistrySource, ResolvedModel
from modq.circuit import BreakerSnapshot
from modq.errors import ModerationError
from modq.redact_urls import mask_urls

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EngineConfig:
    model_dir: Path
    model_uri: str | None = None  # models:/NAME@ALIAS or models:/NAME/VERSION; None = model_dir
    mlflow_uri: str = "sqlite:///var/mlflow.db"
    mlflow_artifact_root: Path = Path("var/mlflow-artifacts")
    model_cache_dir: Path = Path("var/model-cache")
    poll_interval_s: float = 0.0  # 0 = resolve once; a wake-up still triggers a check
    device: str = "auto"
    backend: str = "onnx"  # onnx | torch
    intra_op_threads: int = 1
    max_batch_size: int = 32
    max_batch_tokens: int = 4096
    max_wait_ms: float = 5.0
    batch_overhead_tokens: int | None = None
    call_timeout_s: float | None = 30.0  # a model call running longer is hung (batcher.py)
    guard: GuardConfig = field(default_factory=GuardConfig)  # the primary's circuit breaker


@dataclass(slots=True)
class Engine:
    backend: Backend
    batcher: MicroBatcher
    pid: int
    config: EngineConfig
    model: ResolvedModel  # what results are stamped with
    role: str = PRIMARY  # or FALLBACK: the CPU copy serving while the primary's breaker is open


swaps_done = 0  # swaps in this process, every slot (for stats and tests)


@lru_cache(maxsize=8)
def make_source(config: EngineConfig) -> FolderSource | RegistrySource:
    """The config's model source (one per config: a registry client is reused across polls)."""
    if config.model_uri is None:
        return FolderSource(config.model_dir)
    from registry import ModelRegistry, parse_model_uri

    registry = ModelRegistry(config.mlflow_uri, config.mlflow_artifact_root, config.model_cache_dir)
    return RegistrySource(parse_model_uri(config.model_uri), registry)


def load_backend(config: EngineConfig, folder: Path | None = None) -> Backend:
    """The backend named by ``config.backend`` on ``folder``, imported only when chosen."""
    folder = folder or config.model_dir
    if config.backend == "torch":
        from gpu_worker.backends.torch import TorchBackend

        return TorchBackend(folder, device=config.device, intra_op_threads=config.intra_op_threads)
    from gpu_worker.backends.onnx import OnnxBackend

    return OnnxBackend(folder, device=config.device, intra_op_threads=config.intra_op_threads)


def _build(
    config: EngineConfig,
    resolved: ResolvedModel,
    *,
    role: str = PRIMARY,
    after_batch: BatchHook | None = None,
) -> Engine:
    """An engine on ``resolved``; ``after_batch`` hears its model calls before the global
    hooks do (the primary's breaker)."""
    backend = load_backend(config, resolved.folder)

    def report(batch: BatchReport) -> None:
        if after_batch is not None:
            after_batch(batch)
        _after_batch(batch)

    batcher = MicroBatcher(
        backend,
        max_batch_size=config.max_batch_size,
        max_batch_tokens=config.max_batch_tokens,
        max_wait_ms=config.max_wait_ms,
        batch_overhead_tokens=config.batch_overhead_tokens,
        after_batch=report if after_batch is not None else _after_batch,
        call_timeout_s=config.call_timeout_s,
    )
    return Engine(backend, batcher, os.getpid(), config, resolved, role)


def _build_fallback(config: EngineConfig, resolved: ResolvedModel) -> Engine:
    """The CPU copy of ``resolved`` that serves while the primary's breaker is open."""
    return _build(replace(config, device="cpu"), resolved, role=FALLBACK)


class EngineSlot:
    """One served model source in this process: its engine, its watcher, its swaps."""

    def __init__(self, *, primary: bool = False) -> None:
        self.primary = primary  # the process's own model: ``on_serving`` hooks follow it
        self._engine: Engine | None = None
        self._watcher: ModelWatcher | None = None
        self._lock = threading.Lock()  # guards _engine and _watcher
        self._swap_lock = threading.Lock()  # one swap at a time
        self._guard: ModelGuard | None = None  # the primary's breaker, in this process
        self._guard_pid = 0

    def get(self, config: EngineConfig) -> Engine:
        """The engine jobs should use, built on first use (raises ``ModelUnavailable`` if it
        cannot). The primary slot is guarded: while its breaker is open this is the fallback
        engine, or ``ModelCircuitOpen`` at once (``gpu_worker.guard``).

        Asked for with another config (another model, other batching knobs), the engine is
        rebuilt and the old batcher closed once the new model has loaded.
        """
        guard = self.guard(config)
        return guard.engine(config) if guard is not None else self._get(config)

    def guard(self, config: EngineConfig | None = None) -> ModelGuard | None:
        """This process's breaker of the slot (built with ``config``'s knobs on first use);
        None for an unguarded slot (A/B variants, a breaker turned off)."""
        guard = self._guard if self._guard_pid == os.getpid() else None
        if guard is not None or config is None or not self.primary or not config.guard.enabled:
            return guard
        with self._lock:
            if self._guard is None or self._guard_pid != os.getpid():
                self._guard = ModelGuard(
                    config.guard,
                    load=self._get,
                    current=self.current,
                    build_fallback=_build_fallback,
                    resolve=lambda c: make_source(c).resolve(),
                    on_change=_breaker_changed,
                )
                self._guard_pid = os.getpid()
            return self._guard

    def _on_batch(self, report: BatchReport) -> None:
        guard = self.guard()
        if guard is not None:
            guard.on_batch(report.failed, report.error, hung=report.hung)

    def _get(self, config: EngineConfig) -> Engine:
        """The slot's engine, unguarded: built on first use."""
        engine = self._engine
        if engine is not None and engine.pid == os.getpid() and engine.config == config:
            return engine
        with self._lock:
            current = self._engine
            if current is not None and current.pid == os.getpid() and current.config == config:
                return current
            fresh = _build(config, make_source(config).resolve(), after_batch=self._on_batch)
            self._engine = fresh
            if self.primary:
                _now_serving(fresh)
            if current is not None and current.pid == os.getpid():
                current.batcher.close()
            watcher = self._watcher
            if watcher is None or watcher.pid != os.getpid() or watcher.config != config:
                if watcher is not None and watcher.pid == os.getpid():
                    watcher.stop()
                self._watcher = ModelWatcher(config, self)
                self._watcher.start()
            log.info(
                "modq: serving %s v%s from %s",
                fresh.model.name,
                fresh.model.version,
                mask_urls(repr(config)),  # the MLflow URI may carry a password
            )
            return fresh

    def current(self) -> Engine | None:
        """The engine if this process has loaded one, else None (never loads)."""
        engine = self._engine
        return engine if engine is not None and engine.pid == os.getpid() else None

    def refresh(self) -> bool:
        """Resolve the source again; swap if it names another version. True if swapped.

        Raises ``ModerationError`` if the new version cannot be resolved or loaded: the old
        engine then stays in service.
        """
        global swaps_done
        with self._swap_lock:
            engine = self.current()
            if engine is None:
                return False
            resolved = make_source(engine.config).resolve()
            if (resolved.name, resolved.version, resolved.digest) == (
                engine.model.name,
                engine.model.version,
                engine.model.digest,
            ):
                return False
            fresh = _build(engine.config, resolved, after_batch=self._on_batch)
            with self._lock:
                if self._engine is not engine:  # shut down or rebuilt meanwhile: drop ours
                    fresh.batcher.close()
                    return False
                self._engine = fresh
            if self.primary:
                _now_serving(fresh)
            engine.batcher.close()  # pending texts finish on the old model
            swaps_done += 1
            log.warning(
                "modq: swapped model %s v%s → %s v%s",
                engine.model.name,
                engine.model.version,
                resolved.name,
                resolved.version,
            )
            return True

    def wake(self) -> bool:
        """Wake this slot's watcher to check its source now (False if none runs here)."""
        watcher = self._watcher
        if watcher is None or watcher.pid != os.getpid():
            return False
        watcher.wake()
        return True

    def shutdown(self) -> None:
        guard = self.guard()
        if guard is not None:
            guard.stop()
        with self._lock:
            self._guard = None
            if self._watcher is not None and self._watcher.pid == os.getpid():
                self._watcher.stop()
            self._watcher = None
            if self._engine is not None and self._engine.pid == os.getpid():
                self._engine.batcher.close()
            self._engine = None


_primary = EngineSlot(primary=True)  # the process's own model (settings' model_uri or model_dir)
_variants: dict[EngineConfig, EngineSlot] = {}  # models of the running A/B experiment
_variants_pid = 0
_variants_lock = threading.Lock()


def get_engine(config: EngineConfig) -> Engine:
    """This process's engine, built on first use (raises ``ModelUnavailable`` if it cannot).

    Asked for with another config (another model, other batching knobs), the engine is
    rebuilt and the old batcher closed once the new model has loaded.
    """
    return _primary.get(config)


def _variant_slots() -> dict[EngineConfig, EngineSlot]:
    global _variants, _variants_pid
    if _variants_pid != os.getpid():  # a forked child never inherits its parent's sessions
        _variants, _variants_pid = {}, os.getpid()
    return _variants


def get_variant_engine(config: EngineConfig) -> Engine:
    """The engine of another model source served beside the primary one (an A/B variant):
    loaded on first use, followed by its own watcher, kept until retired. A config equal to
    the primary engine's shares that engine."""
    primary = _primary.current()
    if primary is not None and primary.config == config:
        return primary
    with _variants_lock:
        slot = _variant_slots().setdefault(config, EngineSlot())
    return slot.get(config)


def retire_variant_engines(keep: Iterable[EngineConfig] = ()) -> int:
    """Shut down variant engines whose config is not in ``keep``; returns how many."""
    kept = set(keep)
    with _variants_lock:
        slots = _variant_slots()
        retired = [config for config in slots if config not in kept]
        for config in retired:
            slots.pop(config).shutdown()
    return len(retired)


def variant_engines() -> list[Engine]:
    """Variant engines loaded in this process (for stats)."""
    with _variants_lock:
        slots = list(_variant_slots().values())
    return [engine for slot in slots if (engine := slot.current()) is not None]


def refresh_engine() -> bool:
    """Re-resolve the primary engine's source; swap if it moved (see ``EngineSlot.refresh``)."""
    return _primary.refresh()


def request_refresh() -> bool:
    """Wake every watcher of this process to check its source now (False if none runs)."""
    with _variants_lock:
        slots = [_primary, *_variant_slots().values()]
    woken = [slot.wake() for slot in slots]
    return any(woken)


class ModelWatcher(threading.Thread):
    """Re-resolves a slot's model source every ``poll_interval_s`` or when woken; swaps on a
    move."""

    def __init__(self, config: EngineConfig, slot: EngineSlot) -> None:
        super().__init__(name="modq-model-watcher", daemon=True)
        self.config = config
        self.slot = slot
        self.pid = os.getpid()
        self._wakeup = threading.Event()
        self._stopped = threading.Event()

    def wake(self) -> None:
        self._wakeup.set()

    def stop(self) -> None:
        self._stopped.set()
        self._wakeup.set()

    def run(self) -> None:
        interval_s = self.config.poll_interval_s if self.config.poll_interval_s > 0 else None
        while not self._stopped.is_set():
            self._wakeup.wait(interval_s)
            self._wakeup.clear()
            if self._stopped.is_set():
                return
            try:
                self.slot.refresh()
            except ModerationError as exc:
                log.error("modq: keeping the current model: %s", exc)
            except Exception:  # a watcher that dies would silently stop following the alias
                log.exception("modq: model refresh failed; keeping the current model")


def current_engine() -> Engine | None:
    """The primary engine if this process has loaded one, else None (never loads)."""
    return _primary.current()


def model_guard() -> ModelGuard | None:
    """The primary model's breaker in this process, if a job has asked for the model."""
    return _primary.guard()


def model_breaker() -> BreakerSnapshot | None:
    """The primary model's breaker state in this process (None before the first job)."""
    guard = _primary.guard()
    return guard.snapshot() if guard is not None else None


def shutdown_engine() -> None:
    """Shut down the primary engine and every variant engine of this process."""
    _primary.shutdown()
    retire_variant_engines()
