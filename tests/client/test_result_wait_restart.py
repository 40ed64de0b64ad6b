"""A caller blocked in ``.get()`` outlives a Redis restart (issue 12, part 2).

Stock Celery raised ``RuntimeError: Retry limit exceeded while trying to reconnect to the
Celery result store backend. The Celery application must be restarted.`` to every waiter
once one reconnect failed (5 s of retries); modq's backend reconnects on the next poll and
waits until the caller's own timeout. The caller runs in its own process, on its own
redis-server (AOF), which the test kills and starts again on the same port and data.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from celery import Celery

from cli.services import RedisServer
from tests.polling import wait_until

REPO = Path(__file__).resolve().parents[2]
DOWN_S = 8.0  # longer than stock Celery's 5 s of reconnect tries

CALLER = """
import sys, time
from celery.result import AsyncResult
from modq.client.app import app
result = AsyncResult(sys.argv[1], app=app)
started = time.monotonic()
try:
    value = result.get(timeout=float(sys.argv[2]))
    print("RESULT", value, flush=True)
except Exception as exc:
    print("ERROR", type(exc).__name__, str(exc).replace(chr(10), " "), flush=True)
print("WAITED %.1f" % (time.monotonic() - started), flush=True)
"""


@pytest.fixture
def redis_server():
    server = RedisServer(persistence="aof")
    server.start()
    yield server
    server.stop()


def _caller(url: str, task_id: str, timeout_s: float) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODQ_")}
    env.update(MODQ_REDIS_URL=url, PYTHONPATH=str(REPO))
    return subprocess.Popen(
        [sys.executable, "-c", CALLER, task_id, str(timeout_s)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _subscribed(server: RedisServer) -> bool:
    from redis import Redis

    client = Redis.from_url(server.url)
    try:
        return bool(client.pubsub_numpat() or client.pubsub_channels())
    finally:
        client.close()


def _store_success(url: str, task_id: str, value: object) -> None:
    """What a worker does when the job is done: the result into the result store."""
    from modq.broker.config import shared_celery_config
    from modq.broker.result_store import RESULT_BACKENDS
    from modq.settings import Settings

    app = Celery("modq-test-store", set_as_current=False)
    app.conf.update(shared_celery_config(Settings(redis_url=url)))
    app.loader.override_backends = RESULT_BACKENDS
    app.backend.store_result(task_id, value, "SUCCESS")


def test_a_waiting_caller_gets_its_result_after_a_redis_restart(redis_server):
    task_id = str(uuid.uuid4())
    caller = _caller(redis_server.url, task_id, timeout_s=60)
    try:
        wait_until(lambda: _subscribed(redis_server), timeout_s=30, message="caller never waited")
        redis_server.kill()
        time.sleep(DOWN_S)  # the outage itself: nothing to wait on but the clock
        redis_server.start()
        _store_success(redis_server.url, task_id, {"decision": "allow"})
        out, err = caller.communicate(timeout=60)
    finally:
        caller.kill()
    assert "RESULT {'decision': 'allow'}" in out, out + err[-3000:]
    assert "Retry limit exceeded" not in out + err


@pytest.mark.long
def test_a_caller_waits_out_its_own_timeout_while_redis_stays_down(redis_server):
    caller = _caller(redis_server.url, str(uuid.uuid4()), timeout_s=DOWN_S + 4)
    try:
        wait_until(lambda: _subscribed(redis_server), timeout_s=30, message="caller never waited")
        redis_server.kill()
        out, err = caller.communicate(timeout=60)
    finally:
        caller.kill()
    assert "ERROR TimeoutError" in out, out + err[-3000:]
    waited_s = float(out.split("WAITED")[1])
    # its own timeout, plus at most one bounded reconnect attempt (RECONNECT_ATTEMPT_S)
    assert DOWN_S + 4 <= waited_s <= DOWN_S + 4 + 4, out
