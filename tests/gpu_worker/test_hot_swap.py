"""Hot swap in one process: alias moves are followed between batches, nothing is lost,
a version that cannot load leaves the old one serving, memory stays flat."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from gpu_worker import runtime
from gpu_worker.runtime import EngineConfig, current_engine, get_engine, refresh_engine
from lifecycle import register_model_folder
from modq.errors import ModelUnavailable
from registry import ModelRegistry

NAME = "modq-swap"
TEXTS = ["you are a complete idiot", "thanks for the help with my garden", "buy cheap pills now"]


@pytest.fixture
def registry_config(
    model_registry: ModelRegistry,
    registry_settings: dict[str, str],
    model_dir: Path,
    variant_model_dir: Path,
) -> Iterator[EngineConfig]:
    for folder in (model_dir, variant_model_dir):
        register_model_folder(folder, name=NAME, registry=model_registry, check_loads=False)
    model_registry.set_alias(NAME, "production", "1")
    runtime.shutdown_engine()
    yield EngineConfig(
        model_dir=model_dir,
        model_uri=f"models:/{NAME}@production",
        mlflow_uri=registry_settings["MODQ_MLFLOW_URI"],
        mlflow_artifact_root=Path(registry_settings["MODQ_MLFLOW_ARTIFACT_ROOT"]),
        model_cache_dir=Path(registry_settings["MODQ_MODEL_CACHE_DIR"]),
        max_wait_ms=50,
    )
    runtime.shutdown_engine()


def test_an_alias_move_swaps_between_batches(
    registry_config: EngineConfig, model_registry: ModelRegistry
) -> None:
    old = get_engine(registry_config)
    assert (old.model.name, old.model.version) == (NAME, "1")
    old_scores = old.backend.score(TEXTS)
    assert not refresh_engine()  # nothing moved: no swap

    in_flight = old.batcher.submit(TEXTS)  # waits up to 50 ms for company: the swap comes first
    model_registry.set_alias(NAME, "production", "2")
    assert refresh_engine()
    new = current_engine()
    assert new is not None and new is not old and new.model.version == "2"
    np.testing.assert_allclose(in_flight.result(timeout=30), old_scores, atol=1e-5)
    new_scores = new.batcher.submit(TEXTS).result(timeout=30)
    assert np.abs(new_scores - old_scores).max() > 0.05  # really another model
    with pytest.raises(RuntimeError, match="closed"):
        old.batcher.submit(TEXTS)  # the pipeline retries these on the new engine


def test_a_version_that_cannot_load_leaves_the_old_one_serving(
    registry_config: EngineConfig, model_registry: ModelRegistry
) -> None:
    engine = get_engine(registry_config)
    broken = model_registry.local_folder(model_registry.get(NAME, "2"))
    (broken / "model.onnx").write_bytes(b"not an onnx graph")
    model_registry.set_alias(NAME, "production", "2")
    with pytest.raises(ModelUnavailable, match="cannot load ONNX model"):
        refresh_engine()
    assert current_engine() is engine and engine.model.version == "1"
    assert engine.batcher.submit(TEXTS).result(timeout=30).shape == (
        3,
        len(engine.backend.categories),
    )


def test_the_watcher_follows_the_alias_by_itself(
    registry_config: EngineConfig, model_registry: ModelRegistry
) -> None:
    import dataclasses
    import time

    get_engine(dataclasses.replace(registry_config, poll_interval_s=0.2))
    swaps_before = runtime.swaps_done
    model_registry.set_alias(NAME, "production", "2")
    deadline = time.monotonic() + 30
    while runtime.swaps_done == swaps_before and time.monotonic() < deadline:
        time.sleep(0.05)  # polling a counter the watcher thread bumps
    engine = current_engine()
    assert engine is not None and engine.model.version == "2"


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")  # pragma: no cover


@pytest.mark.long
def test_memory_stays_flat_across_repeated_swaps(
    registry_config: EngineConfig, model_registry: ModelRegistry
) -> None:
    get_engine(registry_config)
    rss_mb: list[float] = []
    for swap in range(10):
        model_registry.set_alias(NAME, "production", "2" if swap % 2 == 0 else "1")
        assert refresh_engine()
        engine = current_engine()
        assert engine is not None
        engine.batcher.submit(TEXTS).result(timeout=30)
        gc.collect()
        rss_mb.append(_rss_mb())
    # one model is ~90 MB of weights; a leak would add about that per swap
    growth_mb = rss_mb[-1] - rss_mb[1]
    assert growth_mb < 60, f"RSS grew {growth_mb:.0f} MB over 8 swaps: {rss_mb}"


def test_on_serving_follows_the_primary_model_and_the_info_metric_with_it(
    registry_config: EngineConfig, model_registry: ModelRegistry
) -> None:
    """The hook tasks/ hangs modq_worker_model_info on: the first load, then each swap."""
    from prometheus_client import CollectorRegistry

    from tasks.worker_metrics import WorkerMetrics

    registry = CollectorRegistry()
    metrics = WorkerMetrics(registry)
    seen: list[str] = []

    def hook(engine: runtime.Engine) -> None:
        seen.append(engine.model.version)
        metrics.serving(engine, "v1")

    def info(version: str) -> float | None:
        engine = current_engine()
        device = engine.backend.device if engine is not None else "none"
        labels = {"name": NAME, "version": version, "device": device, "backend": "onnx"}
        return registry.get_sample_value(
            "modq_worker_model_info", {**labels, "policy_version": "v1"}
        )

    runtime.add_hooks(on_serving=hook)
    try:
        get_engine(registry_config)
        assert seen == ["1"] and info("1") == 1
        model_registry.set_alias(NAME, "production", "2")
        assert refresh_engine()
        assert seen == ["1", "2"]
        assert info("2") == 1 and info("1") is None  # one model named: the one serving
        assert registry.get_sample_value("modq_worker_model_loaded") == 1
    finally:
        runtime.remove_hooks(on_serving=hook)
