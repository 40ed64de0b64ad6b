"""Register → promote → a running worker picks it up → rollback, with jobs flowing all along:
none lost, none failed, each stamped with the version that really scored it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from celery.result import AsyncResult
from sqlalchemy import create_engine

from cache import normalize_content
from db.alias_history import AliasHistory
from db.results import ResultRepository
from db.session import make_engine
from gpu_worker.backends.onnx import OnnxBackend
from lifecycle import promote, register_model_folder, rollback
from registry import ModelRegistry
from tasks import moderate
from tasks.control import broadcast_model_refresh
from tests.model_variants import fp32_source, make_variant
from tests.workers import running_worker

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NAME = "modq-live"
BASES = [
    "you are such a pathetic loser, nobody likes you",
    "great match yesterday, the second half was brilliant",
    "click here for free money and cheap watches",
    "I will hurt you if you come near my house again",
]


class Producer(threading.Thread):
    """Sends one distinct text every few ms until stopped; keeps every AsyncResult."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.sent: list[tuple[str, str, AsyncResult]] = []  # (content_id, text, result)
        self.stop_event = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.stop_event.is_set():
            text = f"{BASES[i % len(BASES)]} #{i}"
            content_id = f"live-{i}"
            self.sent.append(
                (content_id, text, moderate.delay(content_id=content_id, content=text))
            )
            i += 1
            self.stop_event.wait(0.01)  # a steady trickle, so jobs straddle every swap

    def wait_for_version(self, version: str, after: int, timeout_s: float = 60) -> None:
        """Until a job sent after index ``after`` comes back stamped ``version``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for _, _, result in self.sent[after:]:
                if (
                    result.ready()
                    and result.successful()
                    and result.result["model_version"] == version
                ):
                    return
            time.sleep(0.05)
        raise AssertionError(f"no job came back stamped v{version} within {timeout_s}s")


@pytest.fixture(scope="module")
def exact_folders(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """v1 the real model, v2 its heads shifted +1.5, both fp32: served scores are checked
    against offline ones across batches to 1e-4 (int8's move with their batch-mates)."""
    real = fp32_source(model_dir)
    return {"1": real, "2": make_variant(real, tmp_path_factory.mktemp("shifted"), bias_shift=1.5)}


@pytest.fixture
def live_stack(
    database: str,
    model_registry: ModelRegistry,
    registry_settings: dict[str, str],
    exact_folders: dict[str, Path],
    tmp_path: Path,
) -> Iterator[tuple[ModelRegistry, AliasHistory, str]]:
    for folder in (exact_folders["1"], exact_folders["2"]):
        register_model_folder(folder, name=NAME, registry=model_registry, check_loads=False)
    engine = create_engine(database)
    history = AliasHistory(engine)
    promote(model_registry, history, NAME, "1", actor="test", reason="first")
    env = {
        **registry_settings,
        "MODQ_DATABASE_URL": database,
        "MODQ_MODEL_URI": f"models:/{NAME}@production",
        "MODQ_MODEL_POLL_INTERVAL_S": "0",  # only the broadcast can trigger a swap here
        "MODQ_MAX_WAIT_MS": "20",
    }
    with running_worker(env, log_dir=tmp_path, threads=8):
        yield model_registry, history, database
    engine.dispose()


@pytest.mark.long
def test_promote_and_rollback_under_load(
    live_stack: tuple[ModelRegistry, AliasHistory, str], exact_folders: dict[str, Path]
) -> None:
    registry, history, database = live_stack
    producer = Producer()
    producer.start()
    try:
        producer.wait_for_version("1", after=0)
        promote(registry, history, NAME, "2", actor="test", reason="challenger won")
        marker = len(producer.sent)
        assert any(reply for reply in broadcast_model_refresh())
        producer.wait_for_version("2", after=marker)
        rollback(registry, history, NAME, actor="test", reason="rollback drill")
        marker = len(producer.sent)
        broadcast_model_refresh()
        producer.wait_for_version("1", after=marker)
    finally:
        producer.stop_event.set()
        producer.join()

    results: list[dict[str, Any]] = [r.get(timeout=120) for _, _, r in producer.sent]
    assert len(results) == len(producer.sent) > 20
    versions = [r["model_version"] for r in results]
    assert {"1", "2"} <= set(versions)
    # v1 → v2 → v1 in sending order (a few may straddle each boundary)
    first_v2 = versions.index("2")
    last_v2 = len(versions) - 1 - versions[::-1].index("2")
    assert versions[-1] == "1" and first_v2 > 0 and last_v2 < len(versions) - 1

    # every stamp is the truth: recompute each text's scores offline with both models
    backends = {
        "1": OnnxBackend(exact_folders["1"], device="cpu"),
        "2": OnnxBackend(exact_folders["2"], device="cpu"),
    }
    texts = [normalize_content(text) for _, text, _ in producer.sent]
    offline = {v: b.score(texts) for v, b in backends.items()}
    categories = backends["1"].categories
    for row, result in enumerate(results):
        served = np.array([result["scores"][c] for c in categories])
        own, other = result["model_version"], "2" if result["model_version"] == "1" else "1"
        assert np.abs(served - offline[own][row]).max() < 1e-4, result["content_id"]
        # 10x the match tolerance (the default model is confident: a +1.5 logit shift moves a
        # benign text's scores by ~0.005)
        assert np.abs(served - offline[other][row]).max() > 1e-3, result["content_id"]

    engine = make_engine(database)
    try:
        stored = ResultRepository(engine).count()
    finally:
        engine.dispose()
    assert stored == len(results)  # none lost, none stored twice
    assert [m.action for m in history.moves(NAME)] == ["promote", "promote", "rollback"]
