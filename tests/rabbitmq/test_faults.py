"""On RabbitMQ a worker killed with SIGKILL mid-load, and the broker itself stopped or killed
under load, lose no job and store none twice (rows counted in SQL); callers keep sending
through the restart (publish retried for MODQ_PUBLISH_RETRY_S) and read every result."""

from __future__ import annotations

import time
import uuid

import pytest

import migrations
from bench.faults.rabbitmq_restart import PUBLISH_RETRY_S  # the window docs/rabbitmq.md advises
from db.results import ResultRepository
from db.session import make_engine
from modq import moderate
from modq.broker.amqp import AmqpQueues
from modq.broker.config import publish_retry_policy
from modq.client.app import app as client_app
from tasks import app
from tests.polling import wait_until
from tests.rabbitmq.load import Load
from tests.workers import running_worker

pytestmark = [pytest.mark.integration, pytest.mark.slow]

JOBS = 120


def _repository(tmp_path):
    url = f"sqlite:///{tmp_path / 'results.db'}"
    migrations.upgrade(url)
    engine = make_engine(url)
    return url, engine, ResultRepository(engine)


def _assert_each_stored_once(repository: ResultRepository, content_ids: list[str]) -> None:
    duplicated = [cid for cid in content_ids if len(repository.find(cid)) != 1]
    assert not duplicated, f"{len(duplicated)} jobs not stored exactly once: {duplicated[:5]}"


def test_sigkill_mid_batch_loses_nothing_and_stores_once(
    amqp_url, rabbit_node, model_dir, tmp_path
):
    """The broker hands a killed worker's unacknowledged jobs to the next worker at once
    (no visibility timeout on RabbitMQ)."""
    url, engine, repository = _repository(tmp_path)
    env = {"MODQ_DATABASE_URL": url, "MODQ_MAX_BATCH_SIZE": "4", "MODQ_MAX_WAIT_MS": "50"}
    prefix = f"kill-{uuid.uuid4().hex[:8]}"
    ids = [f"{prefix}-{i}" for i in range(JOBS)]
    with running_worker(env, log_dir=tmp_path, threads=8) as worker:
        jobs = [
            moderate.delay(
                content_id=cid,
                priority="normal",
                content=f"item {i}: " + "some words to score " * (5 + i % 30),
            )
            for i, cid in enumerate(ids)
        ]
        wait_until(lambda: repository.count(prefix) >= 5, timeout_s=120, message="nothing stored")
        waiting = AmqpQueues.from_app(app).depths(["normal"])["normal"]
        stored = repository.count(prefix)
        worker.kill()
    in_flight = JOBS - stored - waiting  # delivered to the worker and not stored yet
    stored_at_kill = repository.count(prefix)
    assert stored_at_kill < JOBS, "the kill came too late to test anything"
    assert in_flight > 0, "no job was in flight (delivered, unacknowledged) at the kill"

    with running_worker(env, log_dir=tmp_path, threads=8):
        for job in jobs:
            job.get(timeout=180)
    assert repository.count(prefix) == JOBS
    _assert_each_stored_once(repository, ids)
    print(f"\nrabbitmq kill -9: {in_flight} unacked at the kill, {stored_at_kill} stored before")
    engine.dispose()


@pytest.mark.long
@pytest.mark.parametrize("crash", [False, True], ids=["stop", "sigkill"])
def test_broker_restart_under_load_loses_nothing(
    crash, amqp_url, rabbit_node, tiny_model_dir, tmp_path, monkeypatch
):
    """RabbitMQ stopped (or SIGKILLed) and started again while a producer sends and a worker
    runs: every accepted job is stored once, callers see no error, the worker reconnects."""
    url, engine, repository = _repository(tmp_path)
    env = {"MODQ_DATABASE_URL": url, "MODQ_MODEL_DIR": str(tiny_model_dir)}
    # producers ride out the restart (5-25 s) with the fault scenario's window; put back after
    monkeypatch.setitem(
        client_app.conf, "task_publish_retry_policy", publish_retry_policy(PUBLISH_RETRY_S)
    )
    load = Load(prefix=f"restart-{uuid.uuid4().hex[:8]}", jobs=400, pause_s=0.02)
    with running_worker(env, log_dir=tmp_path, threads=4) as worker:
        load.start()
        wait_until(
            lambda: repository.count(load.prefix) >= 50, timeout_s=60, message="nothing stored"
        )
        down_s = rabbit_node.restart(crash=crash)
        assert not load.done.is_set(), "the producer finished before the restart"
        load.done.wait(120)
        started_s = time.monotonic()
        for _, job in load.accepted:
            job.get(timeout=120)
        drained_s = time.monotonic() - started_s
        assert worker.process.poll() is None, "the worker died with the broker"
    ids = [cid for cid, _ in load.accepted]
    print(
        f"\nrabbitmq {'kill -9' if crash else 'stop'}/start ({down_s:.1f} s down): "
        f"sent {load.jobs}, accepted {len(ids)}, stored {repository.count(load.prefix)}, "
        f"caller errors {len(load.errors)}, drained {drained_s:.1f} s after the last send"
    )
    assert not load.errors, load.errors[:3]
    assert repository.count(load.prefix) == len(ids) == load.jobs
    _assert_each_stored_once(repository, ids)
    engine.dispose()
