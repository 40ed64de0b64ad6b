"""Starting and stopping real Celery worker processes for tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from cli.services import start_worker, stop_worker, wait_for_worker, worker_stats


@contextlib.contextmanager
def running_worker(
    env: Mapping[str, str],
    *,
    log_dir: Path,
    threads: int = 8,
    pool: str = "threads",
    expect_model: bool = True,
    ready_timeout_s: float = 120,
    queues: str = "urgent,normal,bulk",
    nice: int = 0,
) -> Iterator[WorkerHandle]:
    hostname = f"test-{uuid.uuid4().hex[:8]}@localhost"
    process = start_worker(
        {**env, "PYTHONUNBUFFERED": "1"},
        threads=threads,
        log_path=log_dir / f"{hostname}.log",
        hostname=hostname,
        pool=pool,
        queues=queues,
        nice=nice,
    )
    handle = WorkerHandle(process, hostname, log_dir / f"{hostname}.log")
    try:
        # a prefork parent never loads the model: there, any answer means ready
        handle.wait_ready(ready_timeout_s, model_in_parent=expect_model and pool != "prefork")
        yield handle
    finally:
        stop_worker(process)


class WorkerHandle:
    def __init__(self, process: subprocess.Popen[bytes], hostname: str, log: Path) -> None:
        self.process, self.hostname, self.log = process, hostname, log

    def stats(self) -> dict[str, Any]:
        """The worker's own counters (model calls, cache hits), via a remote-control command."""
        stats = worker_stats(hostname=self.hostname, timeout_s=5).get(self.hostname)
        if stats is None:
            raise RuntimeError(f"no stats reply from {self.hostname}")
        return stats

    def wait_ready(self, timeout_s: float, *, model_in_parent: bool = True) -> None:
        try:
            wait_for_worker(
                self.process,
                hostname=self.hostname,
                require_model=model_in_parent,
                timeout_s=timeout_s,
            )
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}:\n{self.log.read_text()[-3000:]}") from exc

    def kill(self) -> None:
        """SIGKILL the whole worker process group: no warm shutdown, no acks."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


def flush_private_redis() -> None:
    """Empty the test session's OWN redis-server (started by conftest, never a shared one)."""
    from redis import Redis

    Redis.from_url(os.environ["MODQ_REDIS_URL"]).flushall()


def wait_for_retry(job: Any, timeout_s: float = 60) -> None:
    """Until a job is in RETRY (it failed with a retryable error); fails if it does anything
    else first."""
    import time

    deadline = time.monotonic() + timeout_s
    while job.state != "RETRY":
        assert time.monotonic() < deadline, f"job state {job.state}"
        assert job.state == "PENDING", f"job state {job.state}"
        time.sleep(0.1)
