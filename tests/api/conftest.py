"""Real processes for the HTTP front: one Celery worker (the real model) and uvicorn serving
``modq api``'s app, both on the session's private redis-server and one migrated SQLite file."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest

from cli.services import running_api as api_process
from tests.workers import WorkerHandle, running_worker

ALL_PRIORITIES = ("urgent", "normal", "bulk")
WEBHOOK_SECRET = "api-tests-webhook-secret"
# the worker delivers webhooks, the API checks callback URLs: both need these
WEBHOOK_ENV = {"MODQ_WEBHOOK_SECRET": WEBHOOK_SECRET, "MODQ_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1"}


@dataclass(frozen=True)
class ApiServer:
    url: str
    log: Path
    process: subprocess.Popen[bytes]

    def client(self, key: str | None = None, **options: object) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **options)  # type: ignore[arg-type]


@contextlib.contextmanager
def running_api(env: Mapping[str, str], *, log_dir: Path) -> Iterator[ApiServer]:
    """``modq api`` (uvicorn) in a subprocess on a free port, until it answers /healthz;
    terminated (then killed) on exit (``cli.services.running_api``, shared with bench/)."""
    with api_process(env, log_dir=log_dir) as started:
        yield ApiServer(started.url, started.log, started.process)


@pytest.fixture(scope="session")
def api_database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One migrated SQLite file: the worker's results and the API's keys."""
    import migrations

    url = f"sqlite:///{tmp_path_factory.mktemp('api-db') / 'modq.db'}"
    migrations.upgrade(url)
    return url


@pytest.fixture(scope="package")
def api_worker(
    model_dir: Path, api_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerHandle]:
    """One real worker (threads pool, the real model) for every test of the API; stopped after
    tests/api, so it never consumes the jobs of the session's later tests."""
    root = tmp_path_factory.mktemp("api-worker")
    env = {"MODQ_DATABASE_URL": api_database_url, "MODQ_MAX_WAIT_MS": "5", **WEBHOOK_ENV}
    with (
        running_worker(env, log_dir=root, threads=8) as handle,
        # webhook deliveries run in a consumer of their own queue (`modq webhooks`)
        running_worker(env, log_dir=root, threads=4, queues="webhooks", expect_model=False),
    ):
        yield handle


def api_env(database_url: str, **overrides: str) -> dict[str, str]:
    """The API process's environment: no rate limit unless a test sets one."""
    return {
        "MODQ_DATABASE_URL": database_url,
        "MODQ_RATE_LIMIT_PER_MIN": "0",
        "MODQ_API_READINESS_CACHE_S": "0.5",
        **WEBHOOK_ENV,
        **overrides,
    }


@pytest.fixture(scope="package")
def api_server(
    api_worker: WorkerHandle, api_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    """``modq api``'s app under uvicorn, with a worker behind it."""
    with running_api(api_env(api_database_url), log_dir=tmp_path_factory.mktemp("api")) as server:
        yield server


def make_key(
    database_url: str, priorities: tuple[str, ...] = ALL_PRIORITIES, *, may_review: bool = True
) -> str:
    from db.api_keys import ApiKeyRepository
    from db.session import make_engine

    engine = make_engine(database_url)
    try:
        _, key = ApiKeyRepository(engine).create("tests", priorities, may_review=may_review)
    finally:
        engine.dispose()
    return key


@pytest.fixture(scope="session")
def api_key(api_database_url: str) -> str:
    """A key with every priority and the review scope."""
    return make_key(api_database_url)
