"""Worker process modes and the CLI producer, against real worker processes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tasks import moderate
from tests.workers import running_worker

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_prefork_children_load_the_model_and_the_parent_never_does(model_dir, database, tmp_path):
    env = {"MODQ_DATABASE_URL": database}
    with running_worker(env, log_dir=tmp_path, threads=1, pool="prefork") as worker:
        result = moderate.delay(content_id="pf-1", content="hello from a prefork child")
        assert result.get(timeout=120)["model_version"]
        assert worker.stats()["model_loaded"] is False  # the control command runs in the parent


def test_modq_moderate_cli_prints_the_result(model_dir, database, tmp_path):
    with running_worker({"MODQ_DATABASE_URL": database}, log_dir=tmp_path, threads=4):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "cli.main",
                "moderate",
                "you are a disgusting idiot",
                "--priority",
                "urgent",
                "--content-id",
                "cli-1",
            ],
            env=os.environ.copy(),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["content_id"] == "cli-1" and result["priority"] == "urgent"
    assert result["decision"] in {"flag", "remove"}


def test_modq_moderate_cli_reports_bad_input_without_a_traceback():
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "moderate", "   ", "--priority", "urgent"],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "invalid_content: content is empty" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_dedicated_urgent_worker_answers_urgent_jobs_and_leaves_bulk_alone(
    model_dir, database, tmp_path, redis_url
):
    from redis import Redis

    from tasks import moderate_many

    env = {"MODQ_DATABASE_URL": database}
    with running_worker(env, log_dir=tmp_path, threads=2, queues="urgent", nice=3) as worker:
        bulk = moderate_many.delay(items=[{"content_id": "ded-b", "content": "bulk text"}])
        urgent = moderate.delay(content_id="ded-u", content="urgent text", priority="urgent")
        assert urgent.get(timeout=60)["priority"] == "urgent"
        assert Redis.from_url(redis_url).llen("bulk") == 1  # never taken by this worker
        assert not bulk.ready()
        niceness = int((Path("/proc") / str(worker.process.pid) / "stat").read_text().split()[18])
        assert niceness == 3


def test_the_worker_command_refuses_unknown_queues():
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "worker", "--queues", "urgent,spam"],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "queues must be a subset of urgent,normal,bulk" in done.stderr
