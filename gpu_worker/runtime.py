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

Observers (``add_hooks``) see every model call of every engine and each engine that starts
serving as the primary model; tasks/ wires them to Prometheus, this room knows no metrics.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from gpu_worker.backend import Backend
from gpu_worker.batcher import BatchHook, BatchReport, MicroBatcher
from gpu_worker.model_source import FolderSource, RegistrySource, ResolvedModel
from modq.errors import ModerationError

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


@dataclass(slots=True)
class Engine:
    backend: Backend
    batcher: MicroBatcher
    pid: int
    config: EngineConfig
    model: ResolvedModel  # what results are stamped with


swaps_done = 0  # swaps in this process, every slot (for stats and tests)

ServingHook = Callable[[Engine], None]
_batch_hooks: list[BatchHook] = []
_serving_hooks: list[ServingHook] = []


def add_hooks(
    *, after_batch: BatchHook | None = None, on_serving: ServingHook | None = None
) -> None:
    """Observe this process's engines: ``after_batch`` gets a report of each model call of
    any engine (primary or A/B variant); ``on_serving`` gets the primary engine whenever one
    starts serving (first load, every swap). Adding the same hook twice adds it once; hooks
    are inherited across fork."""
    if after_batch is not None and after_batch not in _batch_hooks:
        _batch_hooks.append(after_batch)
    if on_serving is not None and on_serving not in _serving_hooks:
        _serving_hooks.append(on_serving)


def remove_hooks(
    *, after_batch: BatchHook | None = None, on_serving: ServingHook | None = None
) -> None:
    """Stop observing with hooks added by ``add_hooks`` (absent ones are ignored)."""
    if after_batch in _batch_hooks:
        _batch_hooks.remove(after_batch)
    if on_serving in _serving_hooks:
        _serving_hooks.remove(on_serving)


def _after_batch(report: BatchReport) -> None:
    for hook in _batch_hooks:
        hook(report)


def _now_serving(engine: Engine) -> None:
    for hook in _serving_hooks:
        try:
            hook(engine)
        except Exception:  # an observer never stops a model from serving
            log.exception("modq: on_serving hook failed")


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


def _build(config: EngineConfig, resolved: ResolvedModel) -> Engine:
    backend = load_backend(config, resolved.folder)
    batcher = MicroBatcher(
        backend,
        max_batch_size=config.max_batch_size,
        max_batch_tokens=config.max_batch_tokens,
        max_wait_ms=config.max_wait_ms,
        batch_overhead_tokens=config.batch_overhead_tokens,
        after_batch=_after_batch,
    )
    return Engine(backend, batcher, os.getpid(), config, resolved)


class EngineSlot:
    """One served model source in this process: its engine, its watcher, its swaps."""

    def __init__(self, *, primary: bool = False) -> None:
        self.primary = primary  # the process's own model: ``on_serving`` hooks follow it
        self._engine: Engine | None = None
        self._watcher: ModelWatcher | None = None
        self._lock = threading.Lock()  # guards _engine and _watcher
        self._swap_lock = threading.Lock()  # one swap at a time

    def get(self, config: EngineConfig) -> Engine:
        """The slot's engine, built on first use (raises ``ModelUnavailable`` if it cannot).

        Asked for with another config (another model, other batching knobs), the engine is
        rebuilt and the old batcher closed once the new model has loaded.
        """
        engine = self._engine
        if engine is not None and engine.pid == os.getpid() and engine.config == config:
            return engine
        with self._lock:
            current = self._engine
            if current is not None and current.pid == os.getpid() and current.config == config:
                return current
            fresh = _build(config, make_source(config).resolve())
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
            log.info("modq: serving %s v%s from %s", fresh.model.name, fresh.model.version, config)
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
            fresh = _build(engine.config, resolved)
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
        with self._lock:
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


def shutdown_engine() -> None:
    """Shut down the primary engine and every variant engine of this process."""
    _primary.shutdown()
    retire_variant_engines()
