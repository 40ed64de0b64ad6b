"""A worker started by `modq worker` sends task events from its first job: a real Flower that
never turns events on itself (as when the worker restarted since Flower last did) still lists
every job, with its name and final state (not a missing or a `null` task)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

import migrations
from cli.services import stop_worker, wait_for_worker
from tests.flower.processes import http_get, running_flower
from tests.polling import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.long]  # ~45 s

USER, PASSWORD = "ops", "events-test-password"


def test_flower_sees_every_job_of_a_freshly_started_modq_worker(
    model_dir: Path, tmp_path: Path
) -> None:
    from tasks import moderate

    database_url = f"sqlite:///{tmp_path / 'results.db'}"
    migrations.upgrade(database_url)
    # Flower's own enable_events broadcast (every 5 s) would hide whether the worker sends
    # events by itself: it is off here, so only the worker's own setting counts
    flower_env = {"FLOWER_ENABLE_EVENTS": "false"}
    hostname = f"events-{uuid.uuid4().hex[:8]}@localhost"
    command = [sys.executable, "-m", "cli.main", "worker", "--threads", "2"]
    command += ["--hostname", hostname, "--loglevel", "warning"]
    env = {**os.environ, "MODQ_DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1"}
    with running_flower(
        flower_env, log_path=tmp_path / "flower.log", login=f"{USER}:{PASSWORD}"
    ) as url:
        with open(tmp_path / "worker.log", "ab") as log:
            worker = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            wait_for_worker(worker, hostname=hostname, timeout_s=180)
            jobs = [
                moderate.delay(content_id=f"ev-{i}", content=f"flower event check {i}")
                for i in range(3)
            ]
            for job in jobs:
                job.get(timeout=120)

            def flower_lists_them() -> dict[str, Any] | None:
                tasks = json.loads(http_get(f"{url}/api/tasks", (USER, PASSWORD))[1])
                seen = {job.id: tasks.get(job.id) for job in jobs}
                done = all(t is not None and t.get("state") == "SUCCESS" for t in seen.values())
                return seen if done else None

            seen = wait_until(
                flower_lists_them,
                timeout_s=60,
                message=f"Flower never listed every job:\n{(tmp_path / 'worker.log').read_text()}",
            )
            assert {task["name"] for task in seen.values()} == {"modq.moderate"}
            assert {task["worker"] for task in seen.values()} == {hostname}
        finally:
            stop_worker(worker)
