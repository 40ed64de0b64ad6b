"""The primary model's circuit breaker and its CPU fallback, in one process.

There is no GPU on this machine. A GPU engine that fails is played by ``FakeGpuBackend``: the
real ONNX model on CPU that says it runs on ``cuda`` and, once ``fail`` is set, raises the way
ONNX Runtime reports a CUDA fault. The fallback is the real thing: the CPU copy the runtime
builds from the same model files (``device=cpu``).
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from gpu_worker import runtime
from gpu_worker.backend import Backend, TokenIds
from gpu_worker.backends.onnx import OnnxBackend
from gpu_worker.batcher import BatcherClosed
from gpu_worker.guard import FALLBACK, PRIMARY, GuardConfig
from gpu_worker.runtime import Engine, EngineConfig, EngineSlot
from modq.circuit import BreakerSnapshot, BreakerState
from modq.errors import ModelCircuitOpen, ModelHung, ModelUnavailable
from tests.polling import wait_until

TEXTS = ["you are a complete idiot", "thanks for the help with my garden", "buy cheap pills now"]
CUDA_FAULT = (
    "[ONNXRuntimeError] : 1 : FAIL : CUDA failure 700: an illegal memory access was "
    "encountered ; GPU=0 ; expr=cudaStreamSynchronize(stream)"
)


class FakeGpuBackend(Backend):
    """The real model on CPU, reporting ``cuda``; raises like a CUDA fault while ``fail``."""

    fail = False
    runs = 0  # model calls that reached it, failed or not
    hang: threading.Event | None = None  # while set to an unset event, each call blocks on it

    def __init__(self, folder: Path) -> None:
        self.inner = OnnxBackend(folder, device="cpu")
        super().__init__(self.inner.manifest)

    @property
    def device(self) -> str:
        return "cuda"

    def tokenize(self, texts: Sequence[str]) -> list[TokenIds]:
        return self.inner.tokenize(texts)

    def _run(self, token_ids: Sequence[TokenIds]) -> np.ndarray:
        type(self).runs += 1
        if type(self).fail:
            raise RuntimeError(CUDA_FAULT)
        hang = type(self).hang
        if hang is not None:
            hang.wait(60)  # a wedged GPU: no error, no answer
        return self.inner.run(token_ids)


@pytest.fixture
def fake_gpu(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FakeGpuBackend]]:
    """Engines asked for on a GPU get the fake; the fallback (device=cpu) gets the real one."""
    real = runtime.load_backend

    def load(config: EngineConfig, folder: Path | None = None) -> Backend:
        if config.device == "cpu":
            return real(config, folder)
        return FakeGpuBackend(folder or config.model_dir)

    FakeGpuBackend.fail, FakeGpuBackend.runs, FakeGpuBackend.hang = False, 0, None
    monkeypatch.setattr(runtime, "load_backend", load)
    yield FakeGpuBackend
    if FakeGpuBackend.hang is not None:
        FakeGpuBackend.hang.set()  # no thread left stuck in it


def config_for(folder: Path, **guard: object) -> EngineConfig:
    knobs = {"failure_threshold": 3, "window_s": 30.0, "probe_interval_s": 0.2, **guard}
    return EngineConfig(
        model_dir=folder,
        device="cuda",
        max_wait_ms=1.0,
        guard=GuardConfig(**knobs),  # type: ignore[arg-type]
    )


@pytest.fixture
def slot() -> Iterator[EngineSlot]:
    slot = EngineSlot(primary=True)
    yield slot
    slot.shutdown()


def refuses(engine: Engine) -> bool:
    """Whether the engine's batcher is closed (a released engine takes no more texts)."""
    try:
        engine.batcher.submit(TEXTS[:1]).result(timeout=30)
    except BatcherClosed:
        return True
    return False


def fail_batches(slot: EngineSlot, config: EngineConfig, count: int) -> None:
    for _ in range(count):
        with pytest.raises(RuntimeError, match="CUDA failure"):
            slot.get(config).batcher.submit(TEXTS).result(timeout=30)


def test_a_failing_gpu_engine_opens_the_breaker_and_the_cpu_copy_serves(
    fake_gpu: type[FakeGpuBackend], slot: EngineSlot, model_dir: Path
) -> None:
    config = config_for(model_dir)
    primary = slot.get(config)
    assert (primary.role, primary.backend.device) == (PRIMARY, "cuda")
    primary.batcher.submit(TEXTS).result(timeout=30)

    fake_gpu.fail = True
    fail_batches(slot, config, 2)
    assert slot.guard() is not None and slot.guard().breaker.closed  # type: ignore[union-attr]
    fail_batches(slot, config, 1)
    guard = slot.guard()
    assert guard is not None and guard.breaker.state is BreakerState.OPEN
    assert "CUDA failure 700" in (guard.snapshot().last_error or "")

    runs_when_opened, opened_s = fake_gpu.runs, time.monotonic()
    fallback = slot.get(config)
    assert (fallback.role, fallback.backend.device) == (FALLBACK, "cpu")
    assert (fallback.model.name, fallback.model.version) == (
        primary.model.name,
        primary.model.version,
    )
    served = fallback.batcher.submit(TEXTS).result(timeout=30)
    expected = OnnxBackend(model_dir, device="cpu").score(TEXTS)  # the same batch, alone
    np.testing.assert_array_equal(served, expected)
    for _ in range(5):
        assert slot.get(config) is fallback  # one fallback, loaded once
    assert guard.fallback_loads == 1

    # the prober rests the model between probes (one per 0.2 s), never one call per job
    time.sleep(0.5)
    probes_due = (time.monotonic() - opened_s) / 0.2 + 1
    assert fake_gpu.runs - runs_when_opened <= probes_due

    fake_gpu.fail = False  # the GPU recovers: the next probe closes the breaker
    wait_until(lambda: guard.breaker.closed, timeout_s=10, message="breaker never closed")
    assert slot.get(config) is primary
    wait_until(  # released by the prober, just after it closed the breaker
        lambda: guard.serving_fallback() is None, timeout_s=10, message="fallback kept"
    )
    wait_until(lambda: refuses(fallback), timeout_s=10, message="fallback batcher still open")


def test_one_hung_model_call_opens_the_breaker_and_the_probe_never_hangs_with_it(
    fake_gpu: type[FakeGpuBackend], slot: EngineSlot, model_dir: Path
) -> None:
    """A GPU that stops answering raises nothing: the batcher's watchdog turns the call into
    ``ModelHung`` (retried) and the guard opens at once, whatever the failure threshold; the
    CPU copy serves; probes are bounded by the same deadline (one stuck probe, no more), so
    the breaker stays open, never half-open forever; once the GPU answers a probe closes it."""
    config = replace(config_for(model_dir, probe_interval_s=0.2), call_timeout_s=0.5)
    slot.get(config).batcher.submit(TEXTS).result(timeout=30)
    fake_gpu.hang = threading.Event()
    hung = slot.get(config).batcher.submit(TEXTS)
    with pytest.raises(ModelHung, match=r"did not answer within 0\.5 s"):
        hung.result(timeout=30)
    guard = slot.guard()
    assert guard is not None and not guard.breaker.closed  # one hung call (threshold 3)
    assert "ModelHung" in (guard.snapshot().last_error or "")
    fallback = slot.get(config)
    assert fallback.role == FALLBACK
    assert fallback.batcher.submit(TEXTS).result(timeout=30).shape[0] == len(TEXTS)
    wait_until(lambda: guard.probes_run >= 3, timeout_s=30, message="the prober got stuck")
    assert guard.hung_calls >= 2  # the batch, then the first probe (the next ones wait on it)
    runs = fake_gpu.runs
    wait_until(lambda: guard.probes_run >= 5, timeout_s=30, message="the prober got stuck")
    assert fake_gpu.runs == runs  # no second probe call while the first is still stuck
    fake_gpu.hang.set()  # the GPU answers again
    wait_until(lambda: guard.breaker.closed, timeout_s=30, message="breaker never closed")
    assert slot.get(config).role == PRIMARY


def test_without_a_fallback_jobs_are_parked_at_once(
    fake_gpu: type[FakeGpuBackend], slot: EngineSlot, model_dir: Path
) -> None:
    config = config_for(model_dir, fallback="none", probe_interval_s=30.0)
    slot.get(config)
    fake_gpu.fail = True
    fail_batches(slot, config, 3)
    runs = fake_gpu.runs
    started_s = time.monotonic()
    for _ in range(100):
        with pytest.raises(ModelCircuitOpen) as caught:
            slot.get(config)
    assert time.monotonic() - started_s < 5.0  # no load: 100 model loads would take minutes
    assert fake_gpu.runs == runs
    assert isinstance(caught.value, ModelUnavailable)  # retryable, like any model outage
    assert 0 < float(caught.value.details["retry_after_s"]) <= 30.0  # type: ignore[arg-type]


def test_auto_has_no_fallback_for_a_cpu_primary(slot: EngineSlot, model_dir: Path) -> None:
    """A CPU copy of a CPU model is no escape: ``auto`` parks the jobs instead."""
    config = replace(config_for(model_dir), device="cpu")
    assert slot.get(config).backend.device == "cpu"
    guard = slot.guard()
    assert guard is not None
    guard.breaker.trip("test")
    assert not guard.fallback_exists()
    with pytest.raises(ModelCircuitOpen):
        slot.get(config)
    wait_until(lambda: guard.breaker.closed, timeout_s=10, message="probe never closed it")


def test_a_model_that_will_not_load_rests_until_its_file_is_mended(
    monkeypatch: pytest.MonkeyPatch, slot: EngineSlot, model_dir: Path, tmp_path: Path
) -> None:
    """A truncated model.onnx: loads fail and open the breaker; then no job loads it, one probe
    per interval does; once the file is whole again a probe loads it and closes the breaker."""
    folder = tmp_path / "model"
    shutil.copytree(model_dir, folder)
    onnx_file = folder / "model.onnx"
    whole = onnx_file.read_bytes()
    onnx_file.write_bytes(whole[: len(whole) // 3])
    loads = []
    real = runtime.load_backend
    monkeypatch.setattr(runtime, "load_backend", lambda *a, **k: loads.append(1) or real(*a, **k))
    config = replace(config_for(folder, probe_interval_s=0.3), device="cpu")
    for _ in range(3):
        with pytest.raises(ModelUnavailable, match="cannot load ONNX model"):
            slot.get(config)
    guard = slot.guard()
    assert guard is not None and guard.breaker.state is BreakerState.OPEN
    opened_s = time.monotonic()
    for _ in range(50):
        with pytest.raises(ModelCircuitOpen):
            slot.get(config)
    time.sleep(1.0)
    probes_due = (time.monotonic() - opened_s) / 0.3 + 1
    assert len(loads) <= 3 + probes_due  # the 3 that failed, then one probe per 0.3 s

    onnx_file.write_bytes(whole)
    wait_until(lambda: guard.breaker.closed, timeout_s=10, message="breaker never closed")
    engine = slot.get(config)
    assert engine.role == PRIMARY
    assert engine.batcher.submit(TEXTS).result(timeout=30).shape == (
        3,
        len(engine.backend.categories),
    )


def test_breaker_hooks_see_each_change(
    fake_gpu: type[FakeGpuBackend], slot: EngineSlot, model_dir: Path
) -> None:
    seen: list[BreakerState] = []

    def hook(snapshot: BreakerSnapshot) -> None:
        seen.append(snapshot.state)

    runtime.add_hooks(on_breaker=hook)
    try:
        config = config_for(model_dir)
        slot.get(config)
        fake_gpu.fail = True
        fail_batches(slot, config, 3)
        fake_gpu.fail = False
        wait_until(lambda: BreakerState.CLOSED in seen, timeout_s=10, message=f"saw {seen}")
    finally:
        runtime.remove_hooks(on_breaker=hook)
    assert seen == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]
