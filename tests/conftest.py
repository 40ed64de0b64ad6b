"""Shared fixtures: a private redis-server for the whole run, the real model, real databases.

The private Redis is started in ``pytest_configure`` — before any test imports ``tasks`` — and
its URL put in ``MODQ_REDIS_URL``, so the producer (this process) and the worker processes
talk to it and never touch the machine's shared Redis.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MODELS_ROOT = Path(os.environ.get("MODQ_TEST_MODELS_DIR", REPO / "models"))
POSTGRES_ADMIN_URL = os.environ.get(
    "MODQ_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

_redis_context: contextlib.AbstractContextManager[str] | None = None
_registry_dir: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _redis_context
    from cli.services import private_redis

    _redis_context = private_redis()
    url = _redis_context.__enter__()
    os.environ["MODQ_REDIS_URL"] = url
    os.environ.pop("MODQ_BROKER_URL", None)
    os.environ.pop("MODQ_RESULT_BACKEND_URL", None)
    os.environ["MODQ_MODEL_DIR"] = str(MODELS_ROOT / "current")
    os.environ.setdefault("MODQ_DATABASE_URL", f"sqlite:///{REPO}/var/test-default.db")
    # a registry of the session's own: whatever a test registers never lands in var/mlflow.db
    global _registry_dir
    _registry_dir = tempfile.mkdtemp(prefix="modq-test-registry-")
    os.environ["MODQ_MLFLOW_URI"] = f"sqlite:///{_registry_dir}/mlflow.db"
    os.environ["MODQ_MLFLOW_ARTIFACT_ROOT"] = f"{_registry_dir}/artifacts"
    os.environ["MODQ_MODEL_CACHE_DIR"] = f"{_registry_dir}/model-cache"
    os.environ["MODQ_WORKER_STATE_DB"] = f"{_registry_dir}/worker-state/%n.db"  # not var/


def pytest_unconfigure(config: pytest.Config) -> None:
    if _registry_dir is not None:
        shutil.rmtree(_registry_dir, ignore_errors=True)
    if _redis_context is not None:
        _redis_context.__exit__(None, None, None)


@pytest.fixture(scope="session")
def redis_url() -> str:
    return os.environ["MODQ_REDIS_URL"]


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The real default model; built from packaged parts if this checkout has none yet."""
    from gpu_worker.manifest import ModelManifest
    from modq.errors import ModelUnavailable
    from modq.settings import get_settings
    from policy import load_policy

    current = MODELS_ROOT / "current"
    try:
        ModelManifest.read(current)
    except ModelUnavailable:
        from training.build import build_model

        build_model(MODELS_ROOT, load_policy(get_settings().policy_path))
    from training.finish import ensure_carried_policies

    # as `make model` does for a model built before folders carried their policy.toml
    ensure_carried_policies(current, load_policy(get_settings().policy_path))
    return current.resolve()


def _sqlite_url(tmp_root: Path) -> str:
    return f"sqlite:///{tmp_root / f'modq-{uuid.uuid4().hex[:8]}.db'}"


class PostgresDatabase:
    """A PostgreSQL database of our own (``modq_test_*``), created on demand, always dropped."""

    def __init__(self) -> None:
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url

        self.name = f"modq_test_{uuid.uuid4().hex[:10]}"
        self.url = (
            make_url(POSTGRES_ADMIN_URL)
            .set(database=self.name)
            .render_as_string(hide_password=False)
        )
        self._admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")

    def create(self) -> str:
        from sqlalchemy import text

        with self._admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{self.name}"'))
        return self.url

    def drop(self) -> None:
        from sqlalchemy import text

        with self._admin.connect() as connection:
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": self.name},
            )
            connection.execute(text(f'DROP DATABASE IF EXISTS "{self.name}"'))
        self._admin.dispose()


@contextlib.contextmanager
def postgres_database(*, create: bool = True) -> Iterator[PostgresDatabase]:
    """A fresh PostgreSQL database of our own (created unless ``create=False``), dropped after."""
    database = PostgresDatabase()
    try:
        if create:
            database.create()
        yield database
    finally:
        database.drop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: SQLite file and PostgreSQL both."""
    import migrations

    if request.param == "sqlite":
        url = _sqlite_url(tmp_path)
        migrations.upgrade(url)
        yield url
    else:
        with postgres_database() as database:
            migrations.upgrade(database.url)
            yield database.url


@pytest.fixture(scope="session")
def variant_model_dir(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real model with its head biases shifted by +1.5: every score differs."""
    from tests.model_variants import make_variant

    return make_variant(model_dir, tmp_path_factory.mktemp("variant"), bias_shift=1.5)


@pytest.fixture
def registry_settings(tmp_path: Path) -> dict[str, str]:
    """Environment of a private MLflow registry (SQLite store, local artifacts) in tmp."""
    return {
        "MODQ_MLFLOW_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "MODQ_MLFLOW_ARTIFACT_ROOT": str(tmp_path / "artifacts"),
        "MODQ_MODEL_CACHE_DIR": str(tmp_path / "model-cache"),
    }


@pytest.fixture
def model_registry(registry_settings: dict[str, str]):  # type: ignore[no-untyped-def]
    from registry import ModelRegistry

    return ModelRegistry(
        registry_settings["MODQ_MLFLOW_URI"],
        Path(registry_settings["MODQ_MLFLOW_ARTIFACT_ROOT"]),
        Path(registry_settings["MODQ_MODEL_CACHE_DIR"]),
    )


@pytest.fixture(autouse=True)
def _settings_read_afresh_after_each_test() -> Iterator[None]:
    """A test that patches ``MODQ_*`` must not leave its settings cached for the next one
    (this teardown runs after monkeypatch has put the environment back)."""
    yield
    from modq.settings import get_settings

    get_settings.cache_clear()
