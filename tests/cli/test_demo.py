"""`modq demo` as a newcomer runs it, beside a Redis that is not the demo's own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from redis import Redis

from cli.services import VOLATILE_OPT_IN, RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.long]  # ~1-2 min

MODQ = str(Path(sys.executable).parent / "modq")


def test_the_demo_runs_on_a_persistent_redis_of_its_own_and_leaves_no_key_behind(
    model_dir: Path, tmp_path: Path
) -> None:
    shared = RedisServer(persistence="none")  # as the machine's Redis at 6379: keeps nothing
    shared_url = shared.start()
    try:
        env = {
            **os.environ,
            "MODQ_REDIS_URL": shared_url,
            "MODQ_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}",
            "MODQ_MODEL_DIR": str(model_dir),
        }
        env.pop(VOLATILE_OPT_IN, None)  # the demo must not need it
        done = subprocess.run(
            [MODQ, "demo", "--threads", "2"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, output[-3000:]
        # said on the terminal: a redis-server of its own, keeping its queues on disk
        assert "redis: a private redis-server for this demo" in done.stdout
        assert "(AOF, stopped and removed at the end" in done.stdout
        assert f"{shared_url} is not touched" in done.stdout
        assert "moderate_many: 12 items" in done.stdout
        assert Redis.from_url(shared_url).dbsize() == 0  # not one key left in a Redis not its own
        worker_log = (tmp_path / "var" / "demo-worker.log").read_text()
        assert VOLATILE_OPT_IN not in worker_log  # no volatile broker, so no warning to give
    finally:
        shared.stop()
