"""Worker process modes and the CLI producer, against real worker processes."""

import json
import os
import subprocess
import sys

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
