"""The services the benchmark runs: the bench-only seed workers and real modq workers.

Each service gets its own private redis-server; a modq worker gets its own SQLite file. All
are real processes; the helpers of ``cli.services`` start, wait for and stop them.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from cli.services import QUEUES, private_redis, start_worker, stop_worker, wait_for_worker

SEED_CHILDREN = 2
WARM_UP_TEXTS = 8
READY_TIMEOUT_S = 300.0


def start_seed_worker(
    backend: str, redis_url: str, model_dir: Path, log_path: Path
) -> subprocess.Popen[bytes]:
    """``celery -A bench.seed_app worker``: 2 prefork children, 1 thread each."""
    from bench.seed_app import QUEUE

    env = {
        **os.environ,
        "MODQ_BENCH_REDIS_URL": redis_url,
        "MODQ_BENCH_SEED_BACKEND": backend,
        "MODQ_MODEL_DIR": str(model_dir),
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "bench.seed_app",
        "worker",
        "-Q",
        QUEUE,
        "--pool",
        "processes",
        "--concurrency",
        str(SEED_CHILDREN),
        "--hostname",
        f"bench-{backend}@%h",
        "--loglevel",
        "warning",
        "--without-gossip",
        "--without-mingle",
    ]
    with open(log_path, "ab") as output:
        return subprocess.Popen(
            command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )


def warm_seed_worker(redis_url: str, texts: list[str]) -> np.ndarray:
    """Send warm-up texts until every child has answered; their scores come back."""
    from bench.seed_app import TASK, make_app

    app = make_app(redis_url)
    pending = [app.send_task(TASK, args=[t]) for t in texts[:WARM_UP_TEXTS]]
    scores = np.array([r.get(timeout=READY_TIMEOUT_S) for r in pending], dtype=np.float32)
    app.close()
    return scores


def modq_worker_env(
    redis_url: str, folder: Path, model_dir: Path, name: str, **settings: str
) -> dict[str, str]:
    """Environment of a modq worker with its own migrated SQLite file under ``folder``."""
    import migrations

    database = f"sqlite:///{folder / f'{name}.db'}"
    migrations.upgrade(database)
    return {
        "MODQ_REDIS_URL": redis_url,
        "MODQ_DATABASE_URL": database,
        "MODQ_MODEL_DIR": str(model_dir),
        "MODQ_CACHE_KEY_PREFIX": f"bench:{name}:",
        "PYTHONUNBUFFERED": "1",
        **settings,
    }


class ModqWorker:
    """A real ``celery -A tasks worker`` (threads pool) with the model loaded."""

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        name: str,
        threads: int,
        *,
        queues: str = QUEUES,
        nice: int = 0,
    ) -> None:
        self.hostname = f"bench-{name}@localhost"
        self.env = env
        self.process = start_worker(
            env,
            threads=threads,
            log_path=log_path,
            hostname=self.hostname,
            queues=queues,
            nice=nice,
        )
        try:
            wait_for_worker(self.process, hostname=self.hostname, timeout_s=READY_TIMEOUT_S)
        except RuntimeError as exc:
            stop_worker(self.process)
            raise RuntimeError(f"{exc}:\n{log_path.read_text()[-3000:]}") from exc

    def stats(self) -> dict[str, Any]:
        from cli.services import worker_stats

        return worker_stats(hostname=self.hostname, timeout_s=5).get(self.hostname, {})

    def rss_mib(self) -> tuple[float, float]:
        """(current, peak) resident memory of the worker process, MiB (/proc status)."""
        return rss_mib(self.process.pid)

    def stop(self) -> None:
        stop_worker(self.process)


def rss_mib(pid: int) -> tuple[float, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024.0
    return fields["VmRSS"], fields["VmHWM"]


@contextlib.contextmanager
def modq_workers(
    name: str,
    model_dir: Path,
    *,
    processes: int = 1,
    threads: int = 32,
    env: Mapping[str, str] | None = None,
) -> Iterator[list[ModqWorker]]:
    """``processes`` modq workers (``threads`` task threads shared among them, ``env`` added to
    their environment) on a private Redis and one SQLite file, for a bench tool run on its
    own; stopped on exit. Sets ``MODQ_REDIS_URL`` in this process (before anything imports
    ``tasks``)."""
    with private_redis() as redis_url:
        os.environ["MODQ_REDIS_URL"] = redis_url
        folder = Path(tempfile.mkdtemp(prefix=f"modq-{name}-"))
        worker_env = modq_worker_env(redis_url, folder, model_dir.resolve(), name, **(env or {}))
        workers: list[ModqWorker] = []
        try:
            for index in range(processes):
                log = folder / f"worker{index}.log"
                share = max(1, threads // processes)
                workers.append(ModqWorker(worker_env, log, f"{name}{index}", share))
            yield workers
        finally:
            for worker in workers:
                worker.stop()
