"""No secret in any output: a password planted in MODQ_DATABASE_URL, MODQ_REDIS_URL /
MODQ_BROKER_URL and MODQ_MLFLOW_URI appears in no stdout, stderr, log file or exception
message of real `modq` processes (db upgrade, worker start, demo) and of a producer given a
malformed broker URL. The issue saw it in all four."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from modq.errors import BrokerUnavailable
from modq.redact_urls import mask_url, mask_urls
from modq.settings import get_settings
from tests.conftest import postgres_database
from tests.polling import wait_until

REPO = Path(__file__).resolve().parent.parent
MODQ = str(Path(sys.executable).parent / "modq")
PASSWORD = "pl4nted-S3CRET-pw"


@pytest.fixture(scope="module")
def password_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private redis-server (AOF) that only lets in clients with ``PASSWORD``."""
    from cli.services import free_port, redis_server_binary

    port = free_port()
    folder = tmp_path_factory.mktemp("redis-pw")
    server = subprocess.Popen(
        [
            *(redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", ""),
            *("--appendonly", "yes", "--dir", str(folder), "--requirepass", PASSWORD),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://:{PASSWORD}@127.0.0.1:{port}/0"
    try:
        wait_until(lambda: _answers(url), timeout_s=10, message="redis-server did not start")
        yield url
    finally:
        server.terminate()
        server.wait(10)


def _answers(url: str) -> bool:
    try:
        return bool(Redis.from_url(url, socket_timeout=0.5).ping())
    except Exception:
        return False


@pytest.fixture(scope="module")
def planted(password_redis: str) -> Iterator[dict[str, str]]:
    """MODQ_* with the password in every URL: a migrated-on-demand PostgreSQL database
    (trust auth ignores the password), the password-protected Redis, an MLflow URI."""
    with postgres_database() as database:
        head, _, rest = database.url.partition("://")
        user_host = rest.split("@", 1)[-1]
        yield {
            **os.environ,
            "MODQ_DATABASE_URL": f"{head}://postgres:{PASSWORD}@{user_host}",
            "MODQ_REDIS_URL": password_redis,
            "MODQ_BROKER_URL": password_redis,
            "MODQ_MLFLOW_URI": f"postgresql://mlflow:{PASSWORD}@127.0.0.1:5432/mlflow",
            "MODQ_ALLOW_VOLATILE_BROKER": "1",
            "PYTHONPATH": str(REPO),
        }


def assert_clean(text: str, where: str) -> None:
    assert PASSWORD not in text, f"the password leaked in {where}:\n{text[-3000:]}"


def test_the_masking_helper():
    assert mask_url(f"redis://:{PASSWORD}@h:6379/0") == "redis://:***@h:6379/0"
    assert mask_url(f"redis//u:{PASSWORD}@h/0") == "redis//u:***@h/0"
    text = f"a postgresql+psycopg://u:{PASSWORD}@h/db b amqp://g:{PASSWORD}@h// c"
    assert mask_urls(text) == "a postgresql+psycopg://u:***@h/db b amqp://g:***@h// c"
    assert mask_urls("sqlite:///var/modq.db") == "sqlite:///var/modq.db"


@pytest.mark.integration
def test_db_upgrade_prints_the_url_masked(planted):
    done = subprocess.run(
        [MODQ, "db", "upgrade"], env=planted, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert_clean(done.stdout + done.stderr, "modq db upgrade")
    assert "migrated postgresql+psycopg://postgres:***@" in done.stdout


@pytest.mark.parametrize(
    "url",
    [
        f"redis://user:{PASSWORD}@127.0.0.1:notaport/0",
        f"redis//user:{PASSWORD}@127.0.0.1/0",
        f"nosuch://user:{PASSWORD}@127.0.0.1/0",
    ],
)
def test_a_malformed_broker_url_is_typed_and_masked(url, monkeypatch, caplog):
    monkeypatch.setenv("MODQ_BROKER_URL", url)
    get_settings.cache_clear()
    code = (
        "from modq import client\n"
        "from modq.errors import BrokerUnavailable\n"
        "try:\n"
        "    client.moderate.delay(content_id='c', content='x')\n"
        "except BrokerUnavailable as exc:\n"
        "    print('typed:', exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "typed: the broker URL" in done.stdout and "***" in done.stdout
    assert_clean(done.stdout + done.stderr, "a producer's output")
    # and in this process: the error, its details and every log record
    from modq import client

    keys = ("broker_url", "result_backend", "broker_transport")
    saved = {key: client.app.conf[key] for key in keys}
    try:
        with caplog.at_level(logging.DEBUG):
            client.configure(broker_url=url, result_backend="redis://127.0.0.1:1/0")
            with pytest.raises(BrokerUnavailable) as refused:
                client.moderate.delay(content_id="c", content="x")
    finally:
        client.configure(**saved)
    assert_clean(str(refused.value) + repr(refused.value.to_dict()), "the exception")
    assert_clean(caplog.text, "the log")


def test_log_records_are_masked_by_the_workers_filter(caplog):
    from modq.redact_urls import UrlMaskingFilter

    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "connecting to %s", (f"redis://:{PASSWORD}@h/0",), None
    )
    assert UrlMaskingFilter().filter(record)
    assert record.getMessage() == "connecting to redis://:***@h/0"


@pytest.mark.integration
def test_a_worker_start_logs_no_secret(planted, tmp_path):
    subprocess.run(
        [MODQ, "db", "upgrade"], env=planted, capture_output=True, timeout=120, check=True
    )
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as output:
        worker = subprocess.Popen(
            [MODQ, "worker", "--threads", "1", "--loglevel", "debug"],
            env=planted,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(
            lambda: " ready." in log_path.read_text() and "serving" in log_path.read_text(),
            timeout_s=120,
            message=f"the worker did not start:\n{log_path.read_text()[-3000:]}",
        )
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(60)
    text = log_path.read_text()
    assert_clean(text, "the worker's log")
    assert "mlflow:***@" in text  # the URI is still logged, masked


@pytest.mark.integration
@pytest.mark.slow
def test_demo_prints_no_secret(planted, tmp_path):
    done = subprocess.run(
        [MODQ, "demo", "--threads", "2"],
        env=planted,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "redis://:***@127.0.0.1" in done.stdout  # the Redis the demo did not touch, masked
    assert_clean(done.stdout + done.stderr, "modq demo")
    for log in tmp_path.rglob("*.log"):
        assert_clean(log.read_text(), str(log))
