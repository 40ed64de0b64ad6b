"""The one shared model of a process: loaded once, lazily, after fork; reloaded if the pid
changes (a forked child never inherits its parent's session)."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from gpu_worker.backend import Backend
from gpu_worker.batcher import MicroBatcher


@dataclass(frozen=True, slots=True)
class EngineConfig:
    model_dir: Path
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


_engine: Engine | None = None
_lock = threading.Lock()


def load_backend(config: EngineConfig) -> Backend:
    """The backend named by ``config.backend``, imported only when chosen."""
    if config.backend == "torch":
        from gpu_worker.backends.torch import TorchBackend

        return TorchBackend(
            config.model_dir, device=config.device, intra_op_threads=config.intra_op_threads
        )
    from gpu_worker.backends.onnx import OnnxBackend

    return OnnxBackend(
        config.model_dir, device=config.device, intra_op_threads=config.intra_op_threads
    )


def get_engine(config: EngineConfig) -> Engine:
    """This process's engine, built on first use (raises ``ModelUnavailable`` if it cannot).

    Asked for with another config (another model folder, other batching knobs), the engine is
    rebuilt and the old batcher closed once the new model has loaded.
    """
    global _engine
    engine = _engine
    if engine is not None and engine.pid == os.getpid() and engine.config == config:
        return engine
    with _lock:
        current = _engine
        if current is None or current.pid != os.getpid() or current.config != config:
            backend = load_backend(config)
            batcher = MicroBatcher(
                backend,
                max_batch_size=config.max_batch_size,
                max_batch_tokens=config.max_batch_tokens,
                max_wait_ms=config.max_wait_ms,
                batch_overhead_tokens=config.batch_overhead_tokens,
            )
            fresh = Engine(backend, batcher, os.getpid(), config)
            _engine = fresh
            if current is not None and current.pid == os.getpid():
                current.batcher.close()
            return fresh
        return current


def current_engine() -> Engine | None:
    """The engine if this process has loaded one, else None (never loads)."""
    engine = _engine
    return engine if engine is not None and engine.pid == os.getpid() else None


def shutdown_engine() -> None:
    global _engine
    with _lock:
        if _engine is not None and _engine.pid == os.getpid():
            _engine.batcher.close()
        _engine = None
