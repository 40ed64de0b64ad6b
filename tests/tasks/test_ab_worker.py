"""A/B routing through a real worker: sticky assignment by user, every assignment recorded with
the result it produced, shadow variants scored on the bulk queue without touching the caller's
answer, and a shadow that cannot even load never holding a caller up."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

import migrations
from cache import normalize_content
from db.assignments import AssignmentRepository
from db.experiments import ExperimentRepository
from db.models import ModerationResultRow
from db.session import make_engine, make_session_factory
from experiments.assignment import assign, unit_of
from gpu_worker.backends.onnx import OnnxBackend
from lifecycle import register_model_folder
from modq.experiment import AssignmentUnit, Experiment, Variant
from registry import ModelRegistry
from tasks import moderate, moderate_many
from tasks.control import broadcast_experiment_refresh
from tests.model_variants import fp32_source, make_variant
from tests.workers import WorkerHandle, flush_private_redis, running_worker

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NAME = "modq-ab"
TEXTS = [
    "you are such a pathetic loser, nobody likes you",
    "great match yesterday, the second half was brilliant",
    "click here for free money and cheap watches",
    "I will hurt you if you come near my house again",
    "thanks for the recipe, the cake turned out lovely",
    "shut up you worthless idiot",
]


class Stack:
    def __init__(self, url: str, registry: ModelRegistry, worker: WorkerHandle) -> None:
        self.url, self.registry, self.worker = url, registry, worker
        self.engine = make_engine(url)
        self.experiments = ExperimentRepository(self.engine)
        self.assignments = AssignmentRepository(self.engine)

    def run(self, experiment: Experiment) -> None:
        self.experiments.create(experiment)
        self.experiments.start(experiment.id)
        assert any(broadcast_experiment_refresh()), "the worker did not answer the broadcast"

    def wait_for_assignments(self, experiment_id: str, count: int, timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        while sum(self.assignments.counts(experiment_id).values()) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.assignments.counts(experiment_id)} after {timeout_s}s, want {count}"
                )
            time.sleep(0.1)


@pytest.fixture(scope="module")
def folders(model_dir: Path, tmp_path_factory) -> dict[str, Path]:
    """v1 the real model, v2 its heads shifted +1.5, v3 shifted -1.5: every score differs.
    fp32: served scores are compared with offline ones across batches, exactly."""
    real = fp32_source(model_dir)
    higher = make_variant(real, tmp_path_factory.mktemp("higher"), bias_shift=1.5)
    lower = make_variant(real, tmp_path_factory.mktemp("lower"), bias_shift=-1.5)
    return {"1": real, "2": higher, "3": lower}


@pytest.fixture(scope="module")
def stack(folders: dict[str, Path], tmp_path_factory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("ab")
    url = f"sqlite:///{root / 'results.db'}"
    migrations.upgrade(url)
    registry_env = {
        "MODQ_MLFLOW_URI": f"sqlite:///{root / 'mlflow.db'}",
        "MODQ_MLFLOW_ARTIFACT_ROOT": str(root / "artifacts"),
        "MODQ_MODEL_CACHE_DIR": str(root / "model-cache"),
    }
    registry = ModelRegistry(
        registry_env["MODQ_MLFLOW_URI"],
        Path(registry_env["MODQ_MLFLOW_ARTIFACT_ROOT"]),
        Path(registry_env["MODQ_MODEL_CACHE_DIR"]),
    )
    for version in ("1", "2", "3"):
        entry = register_model_folder(
            folders[version], name=NAME, registry=registry, check_loads=False
        )
        assert entry.version == version
    registry.set_alias(NAME, "production", "1")
    flush_private_redis()
    env = {
        **registry_env,
        "MODQ_DATABASE_URL": url,
        "MODQ_MODEL_URI": f"models:/{NAME}@production",
        "MODQ_MODEL_POLL_INTERVAL_S": "0",
        "MODQ_MAX_WAIT_MS": "10",
        "MODQ_EXPERIMENT_REFRESH_S": "600",  # only the broadcast makes workers re-read here
    }
    with running_worker(env, log_dir=root, threads=16) as worker:
        stack = Stack(url, registry, worker)
        yield stack
        stack.engine.dispose()
    flush_private_redis()


def _stop_running(stack: Stack) -> None:
    running = stack.experiments.running()
    if running is not None:
        stack.experiments.stop(running.id, "test done")
        broadcast_experiment_refresh()


def _logit(scores: np.ndarray) -> np.ndarray:
    clipped = np.clip(scores, 1e-6, 1 - 1e-6)  # results round scores to 6 decimals
    return np.log(clipped / (1 - clipped))


def _offline(folders: dict[str, Path], texts: list[str]) -> dict[str, np.ndarray]:
    normalized = [normalize_content(t) for t in texts]
    return {v: OnnxBackend(f, device="cpu").score(normalized) for v, f in folders.items()}


def test_sticky_routing_records_every_assignment_and_shadows_never_touch_answers(
    stack: Stack, folders: dict[str, Path]
) -> None:
    experiment = Experiment(
        id="sticky-users",
        variants=(
            Variant("control", f"models:/{NAME}@production", "v1", 0.5),
            Variant("challenger", f"models:/{NAME}/2", "v1", 0.5),
            Variant("quiet", f"models:/{NAME}/3", "v1", shadow=True),
        ),
        unit=AssignmentUnit.USER_ID,
        created_by="test",
    )
    stack.run(experiment)
    try:
        jobs = [  # 40 users, 3 posts each, the urgent and bulk paths both
            (f"sticky-{u}-{k}", TEXTS[(u + k) % len(TEXTS)] + f" ({u}.{k})", f"user-{u}")
            for u in range(40)
            for k in range(3)
        ]
        single = [
            moderate.delay(content_id=c, content=t, user_id=u, priority="urgent")
            for c, t, u in jobs[:60]
        ]
        many = moderate_many.delay(
            items=[{"content_id": c, "content": t, "user_id": u} for c, t, u in jobs[60:]]
        )
        results = [r.get(timeout=120) for r in single] + many.get(timeout=120)
        stack.wait_for_assignments(experiment.id, 2 * len(jobs))  # live + shadow
        stats = stack.worker.stats()
        assert stats["experiment"] == experiment.id
        assert {m["model_version"] for m in stats["variant_models"]} == {"2", "3"}
    finally:
        _stop_running(stack)

    version_of = {"control": "1", "challenger": "2", "quiet": "3"}
    by_user: dict[str, set[str]] = {}
    for (content_id, _, user), result in zip(jobs, results, strict=True):
        assert result["content_id"] == content_id
        # the assignment is the pure function any process computes, and it sticks per user
        expected = assign(experiment, unit_of(experiment, content_id, user)).name
        assert result["variant"] == expected
        assert result["extra"]["experiment"] == experiment.id
        assert result["model_version"] == version_of[expected]
        by_user.setdefault(user, set()).add(result["variant"])
    assert all(len(variants) == 1 for variants in by_user.values())
    assert {v for s in by_user.values() for v in s} == {"control", "challenger"}

    # every assignment recorded with the result it produced; the shadow scored every job
    recorded = stack.assignments.for_experiment(experiment.id)
    live = {a.content_id: a for a in recorded if not a.shadow}
    shadow = {a.content_id: a for a in recorded if a.shadow}
    assert set(live) == set(shadow) == {c for c, _, _ in jobs}
    for result in results:
        row = live[result["content_id"]]
        assert (row.variant, row.decision, row.model_version) == (
            result["variant"],
            result["decision"],
            result["model_version"],
        )
        assert row.scores == result["scores"]
        assert shadow[result["content_id"]].variant == "quiet"
        assert shadow[result["content_id"]].model_version == "3"
    with make_session_factory(stack.engine)() as session:
        stored = session.scalars(
            select(ModerationResultRow).where(ModerationResultRow.content_id.startswith("sticky-"))
        ).all()
    assert len(stored) == len(jobs)  # shadow results never become results
    assert {r.model_version for r in stored} == {"1", "2"}
    assert all(r.variant in {"control", "challenger"} for r in stored)

    # the caller's answer is its live variant's model, never the shadow's (scores recomputed)
    offline = _offline(folders, [t for _, t, _ in jobs])
    categories = OnnxBackend(folders["1"], device="cpu").categories
    for row, result in enumerate(results):
        served = np.array([result["scores"][c] for c in categories])
        assert np.abs(served - offline[result["model_version"]][row]).max() < 1e-4
        # the shadow's head biases are +1.5 (model_variants): apart in logits however small
        assert np.abs(_logit(served) - _logit(offline["3"][row])).max() > 0.5
        shadowed = np.array([shadow[result["content_id"]].scores[c] for c in categories])
        assert np.abs(shadowed - offline["3"][row]).max() < 1e-4


def test_a_shadow_that_cannot_load_never_holds_a_caller_up(stack: Stack) -> None:
    experiment = Experiment(
        id="broken-shadow",
        variants=(
            Variant("control", f"models:/{NAME}@production", "v1", 1.0),
            Variant("ghost", f"models:/{NAME}/99", "v1", shadow=True),  # no such version
        ),
        created_by="test",
    )
    stack.run(experiment)
    try:
        jobs = [(f"ghost-{i}", TEXTS[i % len(TEXTS)] + f" [{i}]") for i in range(30)]
        results = [
            r.get(timeout=60)
            for r in [moderate.delay(content_id=c, content=t, priority="urgent") for c, t in jobs]
        ]
        stack.wait_for_assignments(experiment.id, len(jobs))
    finally:
        _stop_running(stack)
    assert [r["variant"] for r in results] == ["control"] * len(jobs)
    assert all(r["model_version"] == "1" for r in results)
    counts = stack.assignments.counts(experiment.id)
    assert counts == {"control": len(jobs)}  # the ghost recorded nothing, and lost no answer


def test_stopping_the_experiment_routes_back_to_the_workers_own_model(stack: Stack) -> None:
    experiment = Experiment(
        id="all-challenger",
        variants=(
            Variant("control", f"models:/{NAME}@production", "v1", 0.0001),
            Variant("challenger", f"models:/{NAME}/2", "v1", 0.9999),
        ),
        created_by="test",
    )
    stack.run(experiment)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(_stop_running, stack)
        during = moderate.delay(content_id="stop-during", content=TEXTS[0]).get(timeout=60)
        stack.experiments.stop(experiment.id, "enough")
        assert any(broadcast_experiment_refresh())
        after = moderate.delay(content_id="stop-after", content=TEXTS[0]).get(timeout=60)
    assert (during["variant"], during["model_version"]) == ("challenger", "2")
    assert (after["variant"], after["model_version"]) == (None, "1")
    assert "experiment" not in after["extra"]
