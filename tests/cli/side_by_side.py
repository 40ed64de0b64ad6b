"""Two `modq worker` commands on one host, as README and docs/rabbitmq.md advise (a worker for
everything and a dedicated urgent one), run for real on whichever broker this process's apps
point at (tests/cli: the private Redis; tests/rabbitmq: a private RabbitMQ node)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from cli.services import worker_stats
from tests.polling import wait_until

MODQ = str(Path(sys.executable).parent / "modq")


@contextmanager
def modq_workers(
    env: Mapping[str, str], log_dir: Path, *options: list[str]
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """One `modq worker OPTIONS...` per entry of ``options``, each in its own session and log;
    SIGKILLed if still up at the end."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        for index, extra in enumerate(options):
            with open(log_dir / f"worker-{index}.log", "ab") as log:  # the child keeps its own
                started.append(
                    subprocess.Popen(
                        [MODQ, "worker", "--loglevel", "warning", *extra],
                        env={**os.environ, **env},
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        yield started
    finally:
        for process in started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


def nodes_by_pid(workers: list[subprocess.Popen[bytes]], log_dir: Path) -> dict[int, str]:
    """``{pid: node name}`` once every worker answers with its model loaded (a single `modq
    worker` execs Celery, so the node's pid is the command's); fails if one exits first."""

    def answered() -> dict[int, str]:
        for index, process in enumerate(workers):
            if process.poll() is not None:
                log = (log_dir / f"worker-{index}.log").read_text()[-3000:]
                raise AssertionError(f"worker {index} exited {process.returncode}:\n{log}")
        names = {
            int(stats["pid"]): name
            for name, stats in worker_stats(timeout_s=1).items()
            if stats.get("model_loaded")
        }
        return names if {p.pid for p in workers} <= names.keys() else {}

    return wait_until(
        answered, timeout_s=180, interval_s=0.5, message="the workers never all answered"
    )


def check_two_workers_on_one_host(env: Mapping[str, str], log_dir: Path) -> None:
    """A default `modq worker` and a dedicated urgent one beside it: both start, answer under
    two names, serve their queues and stop cleanly."""
    from modq import moderate

    with modq_workers(
        env, log_dir, ["--threads", "1"], ["--queues", "urgent", "--threads", "1"]
    ) as workers:
        nodes = nodes_by_pid(workers, log_dir)
        everything, urgent = (nodes[w.pid] for w in workers)
        assert everything != urgent
        tag = uuid.uuid4().hex[:6]
        jobs = [
            moderate.delay(content_id=f"{tag}-{p}", content="hello", priority=p)
            for p in ("urgent", "normal", "bulk")
        ]
        assert [job.get(timeout=120)["content_id"] for job in jobs] == [
            f"{tag}-urgent",
            f"{tag}-normal",
            f"{tag}-bulk",
        ]
        for process in workers:  # both still up, and both stop warmly
            assert process.poll() is None
            os.killpg(process.pid, signal.SIGTERM)
        assert [process.wait(60) for process in workers] == [0, 0]
