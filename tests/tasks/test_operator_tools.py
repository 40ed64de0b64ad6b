"""Operators' Celery tools against real worker processes: they work or say no.

- ``--autoscale`` on the threads pool is refused at start, with the reason.
- 1,000 control calls (``inspect().ping()``, what Flower's refresh sends) leave Redis with the
  same keys, nothing in ``unacked`` and no more memory.
- A revoked job stays revoked across a worker restart (the node's state db).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

import migrations
from cli.services import start_worker, stop_worker
from db.results import ResultRepository
from db.session import make_engine
from modq import moderate
from tasks import app
from tasks.signals import AUTOSCALE_REFUSED
from tests.workers import WorkerHandle, flush_private_redis, running_worker

pytestmark = [pytest.mark.integration, pytest.mark.slow]

INSPECT_CALLS = 1_000
REPO = Path(__file__).resolve().parents[2]


def _env(model_dir: Path, tmp_path: Path) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'results.db'}"
    migrations.upgrade(url)
    return {"MODQ_DATABASE_URL": url, "MODQ_MODEL_DIR": str(model_dir)}


@pytest.mark.parametrize(
    "command",
    [
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "tasks",
            "worker",
            "--autoscale",
            "4,1",
            "-P",
            "threads",
        ],
        [sys.executable, "-m", "cli.main", "worker", "--autoscale", "4,1"],
    ],
    ids=["celery-worker", "modq-worker"],
)
def test_autoscale_on_the_threads_pool_is_refused_at_start(command):
    done = subprocess.run(
        command,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    reason = AUTOSCALE_REFUSED.format(pool="threads")
    assert reason in " ".join(done.stderr.split()), done.stderr[-2000:]


@pytest.fixture
def worker(tiny_model_dir: Path, tmp_path: Path) -> Iterator[WorkerHandle]:
    flush_private_redis()
    with running_worker(_env(tiny_model_dir, tmp_path), log_dir=tmp_path, threads=2) as handle:
        yield handle
    flush_private_redis()


def _snapshot(redis: Redis) -> dict[str, Any]:
    return {
        "keys": sorted(redis.keys("*")),
        "unacked": redis.hlen("unacked"),
        "used_memory": int(redis.info("memory")["used_memory"]),
    }


@pytest.mark.long
def test_a_thousand_control_calls_leave_no_keys_nothing_unacked_and_no_memory(worker):
    redis = Redis.from_url(os.environ["MODQ_REDIS_URL"])

    def ping() -> None:
        replies = app.control.inspect(destination=[worker.hostname], timeout=5).ping()
        assert replies == {worker.hostname: {"ok": "pong"}}

    for _ in range(10):  # the caller's reply queue binding and connections exist from here
        ping()
    before = _snapshot(redis)
    for _ in range(INSPECT_CALLS):
        ping()
    after = _snapshot(redis)
    grown_bytes = after["used_memory"] - before["used_memory"]
    print(
        f"\n{INSPECT_CALLS} inspect().ping(): keys {len(before['keys'])} -> "
        f"{len(after['keys'])}, unacked {before['unacked']} -> {after['unacked']}, "
        f"used_memory {before['used_memory']} -> {after['used_memory']} B "
        f"({grown_bytes:+d} B)"
    )
    assert after["keys"] == before["keys"]
    assert after["unacked"] == before["unacked"] == 0
    # one reply left behind would be ~1 KiB; 1,000 of them ~1 MiB. Allow allocator noise.
    assert grown_bytes < 64 * 1024
    assert not [key for key in after["keys"] if key.startswith(b"_modq.doorbell.")]


def test_a_revoked_job_stays_revoked_across_a_restart(tiny_model_dir, tmp_path):
    """Revoke a job while it waits on a queue its worker does not read yet, restart the worker
    reading every queue: it drops the job (its node's state db kept the revoke)."""
    flush_private_redis()
    env = {**_env(tiny_model_dir, tmp_path), "MODQ_WORKER_STATE_DB": f"{tmp_path}/state/%n.db"}
    hostname = f"revoke-{uuid.uuid4().hex[:6]}@localhost"

    def started(queues: str) -> tuple[subprocess.Popen[bytes], WorkerHandle]:
        process = start_worker(
            env, threads=2, log_path=tmp_path / "worker.log", hostname=hostname, queues=queues
        )
        handle = WorkerHandle(process, hostname, tmp_path / "worker.log")
        handle.wait_ready(120)
        return process, handle

    process, _ = started("urgent")
    try:
        revoked = moderate.delay(content_id="revoked-1", content="never run", priority="bulk")
        replies = app.control.revoke(revoked.id, destination=[hostname], reply=True, timeout=5)
        assert replies and revoked.id in str(replies[0]), replies
    finally:
        stop_worker(process)  # warm shutdown: the node writes its state db
    assert list((tmp_path / "state").glob("revoke-*")), "no state db written"

    process, _ = started("urgent,normal,bulk")
    try:
        after = moderate.delay(content_id="after-1", content="runs", priority="bulk")
        assert after.get(timeout=60)["content_id"] == "after-1"  # queued behind the revoked one
        assert revoked.state == "REVOKED"
    finally:
        stop_worker(process)
    engine = make_engine(env["MODQ_DATABASE_URL"])
    repository = ResultRepository(engine)
    assert repository.find("revoked-1") == [] and len(repository.find("after-1")) == 1
    engine.dispose()
    flush_private_redis()
