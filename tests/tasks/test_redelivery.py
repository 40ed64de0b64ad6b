"""A worker killed with SIGKILL mid-batch loses no job: redelivered, stored exactly once."""

import os
import time
import uuid

import pytest
from redis import Redis

import migrations
from db.results import ResultRepository
from db.session import make_engine
from tasks import moderate
from tests.workers import flush_private_redis, running_worker

pytestmark = [pytest.mark.integration, pytest.mark.slow]

JOBS = 120


def test_sigkill_mid_batch_loses_nothing_and_stores_once(model_dir, tmp_path):
    flush_private_redis()
    url = f"sqlite:///{tmp_path / 'results.db'}"
    migrations.upgrade(url)
    engine = make_engine(url)
    repository = ResultRepository(engine)
    env = {
        "MODQ_DATABASE_URL": url,
        "MODQ_VISIBILITY_TIMEOUT_S": "3",
        "MODQ_UNACKED_RESTORE_INTERVAL_S": "1",
        "MODQ_MAX_BATCH_SIZE": "4",
        "MODQ_MAX_WAIT_MS": "50",
    }
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
        deadline = time.monotonic() + 120
        while repository.count(prefix) < 5:  # some done, most still queued or in flight
            assert time.monotonic() < deadline, "worker never stored a result"
            time.sleep(0.05)
        worker.kill()
    stored_at_kill = repository.count(prefix)
    assert stored_at_kill < JOBS, "the kill came too late to test anything"
    broker = Redis.from_url(os.environ["MODQ_REDIS_URL"])
    in_flight = broker.hlen("unacked")
    broker.close()
    assert in_flight > 0, "no job was in flight (reserved, unacknowledged) at the kill"

    with running_worker(env, log_dir=tmp_path, threads=8):
        for job in jobs:
            job.get(timeout=180)  # bound to modq's app, whatever app another test made current
    assert repository.count(prefix) == JOBS
    for cid in ids:
        assert len(repository.find(cid)) == 1, cid
    engine.dispose()
    flush_private_redis()
