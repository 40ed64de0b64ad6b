"""modq against a Redis that is a trust boundary: an ACL user with a password, bound to a
private address, the default user off (docs/redis.md; issue 12, part 7).

Anyone who could reach the old default Redis could shut every worker down. Here a producer,
a real worker and the result store all log in as ``modq``; a client without the password is
refused, the worker keeps serving, and the password is in no log line or output.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from celery import Celery
from kombu.exceptions import OperationalError
from redis import Redis
from redis.exceptions import AuthenticationError, ResponseError

import migrations
from bench.faults.load import stored_rows
from cli.services import WORKER_ENV_DEFAULTS, RedisServer, stop_worker, worker_command

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # ~40 s: a worker, two clients

REPO = Path(__file__).resolve().parents[2]
PASSWORD = f"planted-{uuid.uuid4().hex[:12]}"  # a password we can look for anywhere

PRODUCER = """
import sys
from tasks import moderate, moderate_many
one = moderate.delay(content_id=sys.argv[1] + "-1", content="hello there", priority="urgent")
many = moderate_many.delay(items=[
    {"content_id": sys.argv[1] + "-2", "content": "buy cheap followers now"},
    {"content_id": sys.argv[1] + "-3", "content": "see you at the match"},
])
print("ONE", one.get(timeout=120)["decision"])
print("MANY", len(many.get(timeout=120)))
"""


@pytest.fixture
def acl_redis():
    server = RedisServer(persistence="aof", password=PASSWORD)
    server.start()
    yield server
    server.stop()


def test_modq_runs_against_a_password_protected_redis(acl_redis, tiny_model_dir, tmp_path):
    url = acl_redis.url
    assert url == f"redis://modq:{PASSWORD}@127.0.0.1:{acl_redis.port}/0"
    database_url = f"sqlite:///{tmp_path / 'results.db'}"
    migrations.upgrade(database_url)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MODQ_")}
    env = {
        **clean,
        "MODQ_REDIS_URL": url,
        "MODQ_DATABASE_URL": database_url,
        "MODQ_MODEL_DIR": str(tiny_model_dir),
        "MODQ_WORKER_STATE_DB": str(tmp_path / "state" / "%n.db"),
        "MODQ_MLFLOW_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "worker.log"
    # info level: the banner, the connection lines and the startup checks all show
    command = worker_command(2, hostname="acl@localhost", loglevel="info")
    with open(log, "ab") as output:
        worker = subprocess.Popen(
            command,
            cwd=REPO,
            env={**WORKER_ENV_DEFAULTS, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        # nobody without the password gets in: not a plain client, not a foreign Celery app
        with pytest.raises((AuthenticationError, ResponseError)):
            Redis(host="127.0.0.1", port=acl_redis.port, socket_timeout=2).ping()
        stranger = Celery("stranger", broker=f"redis://127.0.0.1:{acl_redis.port}/0")
        stranger.conf.broker_connection_retry_on_startup = False
        stranger.conf.broker_connection_max_retries = 1
        with pytest.raises((OperationalError, AuthenticationError, ResponseError)):
            stranger.control.shutdown(destination=["acl@localhost"])

        prefix = f"acl-{uuid.uuid4().hex[:6]}"
        produced = subprocess.run(
            [sys.executable, "-c", PRODUCER, prefix],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert produced.returncode == 0, produced.stderr[-3000:] + log.read_text()[-3000:]
        assert "ONE " in produced.stdout and "MANY 2" in produced.stdout
        stored, duplicated = stored_rows(database_url, prefix)
        assert len(stored) == 3 and duplicated == 0
        assert worker.poll() is None, "the worker stopped"
    finally:
        stop_worker(worker)
    text = log.read_text()
    assert "celery@" in text or "acl@localhost" in text, text[-2000:]  # the log is not empty
    assert PASSWORD not in text
    assert PASSWORD not in produced.stdout + produced.stderr
