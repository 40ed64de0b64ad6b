"""Real Flower (started by `modq flower`) and a real Celery event receiver, for tests."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from cli.services import (
    WORKER_ENV_DEFAULTS,
    free_port,
    stop_worker,
    wait_for_worker,
    worker_command,
)
from tests.polling import wait_until


def http_get(url: str, auth: tuple[str, str] | None = None) -> tuple[int, str]:
    """``(status, body)`` of a GET, with basic auth if ``auth``."""
    request = urllib.request.Request(url)
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


@contextlib.contextmanager
def running_flower(
    env: Mapping[str, str], *, log_path: Path, login: str, ready_timeout_s: float = 90
) -> Iterator[str]:
    """`modq flower` on a free port with ``login`` (user:password); yields its base URL."""
    port = free_port()
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "flower", "--port", str(port)],
            env={**os.environ, **env, "MODQ_FLOWER_BASIC_AUTH": login, "PYTHONUNBUFFERED": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"flower exited ({process.returncode}):\n{log_path.read_text()}")
        try:
            return http_get(f"{url}/healthcheck")[0] == 200
        except OSError:
            return False

    try:
        wait_until(
            answers, timeout_s=ready_timeout_s, interval_s=0.2, message="Flower never answered"
        )
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


@contextlib.contextmanager
def running_logged_worker(
    env: Mapping[str, str], *, log_path: Path, threads: int = 4, ready_timeout_s: float = 120
) -> Iterator[str]:
    """A real worker (threads pool, the real model) logging at INFO, where Celery writes each
    job's arguments and result; yields its hostname."""
    hostname = f"flower-{uuid.uuid4().hex[:8]}@localhost"
    command = worker_command(threads, hostname=hostname, loglevel="info")
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command,
            env={**WORKER_ENV_DEFAULTS, **os.environ, **env, "PYTHONUNBUFFERED": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        try:
            wait_for_worker(process, hostname=hostname, timeout_s=ready_timeout_s)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}:\n{log_path.read_text()[-3000:]}") from exc
        yield hostname
    finally:
        stop_worker(process)


class EventRecorder:
    """Every Celery event on the broker, as received (``celery events`` sees the same)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._receiver: Any = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _record(self, event: dict[str, Any]) -> None:
        with self._lock:
            self.events.append(event)

    def _run(self) -> None:
        with self.app.connection() as connection:
            self._receiver = self.app.events.Receiver(connection, handlers={"*": self._record})
            self._receiver.on_consume_ready = lambda *args, **kwargs: self._ready.set()
            for _ in self._receiver.consume(limit=None, timeout=None):
                pass

    def __enter__(self) -> EventRecorder:
        self._thread.start()
        assert self._ready.wait(30), "event receiver did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._receiver is not None:
            self._receiver.should_stop = True
        self._thread.join(10)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.events if e.get("type") == kind]

    def dump(self) -> str:
        """All events as one JSON text (what a search for a marker reads)."""
        with self._lock:
            return json.dumps(self.events, default=str)
