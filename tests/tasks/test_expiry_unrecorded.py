"""An expired job whose failure and dead-letter entry can both not be recorded is not lost: a
real worker whose result store and dead-letter store are away leaves it unacknowledged (the
visibility timeout brings it back), where it used to acknowledge it away."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

import pytest
from redis import Redis

from cli.services import free_port
from tasks import moderate
from tests.polling import wait_until
from tests.workers import running_worker

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_an_expired_job_nothing_could_record_stays_unacknowledged(
    redis_url: str, model_dir: Path, tmp_path: Path
) -> None:
    import migrations

    queue = f"modq-test-expiry-{uuid.uuid4().hex[:8]}"
    redis = Redis.from_url(redis_url)
    moderate.delay(content_id="expiry", content="a comment")  # no worker runs yet
    message = json.loads(redis.rpop("normal"))
    task_id = message["headers"]["id"]
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=60)
    message["headers"]["expires"] = past.isoformat()
    database = f"sqlite:///{tmp_path / 'results.db'}"
    migrations.upgrade(database)
    away = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    env = {
        "MODQ_DATABASE_URL": database,
        "MODQ_RESULT_BACKEND_URL": away,
        "MODQ_RESULT_STORE_RETRY_S": "1",
        "MODQ_DEAD_LETTERS_URL": away,
    }
    with running_worker(env, log_dir=tmp_path, threads=2, queues=queue) as worker:
        redis.lpush(queue, json.dumps(message))
        handled = (f"cannot dead-letter expired job {task_id}", f"record expired job {task_id}")
        wait_until(  # this code's last word on it, or the old code's only one
            lambda: any(line in worker.log.read_text() for line in handled),
            timeout_s=120,
            message="the expiry was not handled",
        )
        assert worker.process.poll() is None
        assert any(task_id.encode() in entry for entry in redis.hvals("unacked"))
    redis.delete(queue)
