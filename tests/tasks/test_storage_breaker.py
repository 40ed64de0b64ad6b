"""The database breaker: repeated failed writes open it, the worker stops consuming (the broker
keeps the jobs, retries stop climbing), a probe closes it, and every job is stored once."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from typing import Any

import pytest
from sqlalchemy.engine import make_url

import migrations
from bench.faults.tcp_proxy import tcp_proxy
from cli.services import free_port
from db.session import make_engine
from modq.broker.queues import BrokerQueues
from modq.circuit import BreakerState
from modq.errors import StorageRejected, StorageUnavailable
from tasks.storage_breaker import ConsumerPause, StorageBreaker
from tests.conftest import postgres_database
from tests.polling import wait_until
from tests.workers import flush_private_redis, running_worker


class FakeConsumer:
    """What ConsumerPause needs of Celery's consumer; call_soon runs at once."""

    def __init__(self, queues: list[str]) -> None:
        self.consuming = list(queues)
        self.task_consumer = self

    @property
    def queues(self) -> list[Any]:
        return [type("Q", (), {"name": name})() for name in self.consuming]

    def call_soon(self, fn: Any) -> None:
        fn()

    def cancel_task_queue(self, name: str) -> None:
        self.consuming.remove(name)

    def add_task_queue(self, name: str) -> None:
        self.consuming.append(name)


def _down() -> None:
    raise StorageUnavailable("cannot store results: database unavailable (refused)")


def test_failures_open_the_breaker_pause_consumers_and_a_probe_closes_it(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'b.db'}"
    engine = make_engine(url)
    consumer = FakeConsumer(["urgent", "normal", "bulk"])
    pause = ConsumerPause()
    pause.attach(consumer)
    breaker = StorageBreaker(engine, failure_threshold=3, probe_s=0.1, pause=pause)
    probing_allowed = False

    def probe() -> None:
        if not probing_allowed:
            raise StorageUnavailable("still down")
        StorageBreaker.probe(breaker)

    breaker.probe = probe  # type: ignore[method-assign]
    for _ in range(3):
        with pytest.raises(StorageUnavailable):
            breaker.call(_down)
    assert breaker.breaker.state is BreakerState.OPEN
    assert consumer.consuming == [] and pause.pauses == 1
    name, why = breaker.readiness()
    assert name == "storage_breaker" and why.startswith("open") and "consumers paused" in why

    calls: list[int] = []
    with pytest.raises(StorageUnavailable, match="breaker open"):
        breaker.call(lambda: calls.append(1))  # fails fast: the database is not touched
    assert calls == []

    time.sleep(0.5)
    assert not breaker.breaker.closed  # the probes failed
    probing_allowed = True
    wait_until(lambda: breaker.breaker.closed, timeout_s=5, message="probe never closed it")
    assert sorted(consumer.consuming) == ["bulk", "normal", "urgent"]
    assert breaker.readiness() == ("storage_breaker", "ok")
    assert breaker.call(lambda: 7) == 7
    breaker.close()
    engine.dispose()


def test_a_quick_open_and_close_never_leaves_the_worker_paused() -> None:
    """The consumer's loop runs its callbacks in no set order: the last wish wins anyway."""
    consumer = FakeConsumer(["urgent", "normal", "bulk"])
    scheduled: list[Any] = []
    consumer.call_soon = scheduled.append  # type: ignore[method-assign]
    pause = ConsumerPause()
    pause.attach(consumer)
    pause.pause()
    pause.resume()
    for callback in reversed(scheduled):  # the resume's callback runs first
        callback()
    assert sorted(consumer.consuming) == ["bulk", "normal", "urgent"]
    scheduled.clear()
    pause.pause()
    for callback in scheduled:
        callback()
    assert consumer.consuming == []


def test_a_rejected_row_does_not_count_toward_opening(tmp_path) -> None:
    """The database that refuses a row has answered: the count of failures starts again."""
    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    breaker = StorageBreaker(engine, failure_threshold=2, probe_s=1.0, pause=ConsumerPause())

    def rejected() -> None:
        raise StorageRejected("bad row")

    for _ in range(5):
        with pytest.raises(StorageUnavailable):
            breaker.call(_down)
        with pytest.raises(StorageRejected):
            breaker.call(rejected)
    assert breaker.breaker.closed
    engine.dispose()


def test_the_probe_passes_on_a_writable_database(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    migrations.upgrade(url)
    engine = make_engine(url)
    StorageBreaker(engine, failure_threshold=1, probe_s=1.0, pause=ConsumerPause()).probe()
    engine.dispose()


# --- a real worker, a real PostgreSQL behind a proxy that we stop ---------------------------


def _metric(port: int, name: str, **labels: str) -> float:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    total = 0.0
    for line in body.splitlines():
        if not line.startswith(name):
            continue
        match = re.match(rf"{name}(?:\{{(.*)\}})? (\S+)$", line)
        if match and all(f'{k}="{v}"' in (match.group(1) or "") for k, v in labels.items()):
            total += float(match.group(2))
    return total


def _health(port: int) -> dict[str, Any]:
    try:
        response = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
    except urllib.error.HTTPError as error:  # 503 carries the checks too
        return json.loads(error.read())
    return json.loads(response.read())


@pytest.mark.integration
@pytest.mark.slow
def test_worker_stops_consuming_while_postgres_is_down_and_stores_everything_after(
    model_dir, tmp_path
) -> None:
    from tasks import app, moderate

    flush_private_redis()
    queues = BrokerQueues.from_app(app)
    with postgres_database() as database:
        migrations.upgrade(database.url)
        real = make_url(database.url)
        with tcp_proxy(real.host or "127.0.0.1", real.port or 5432) as proxy:
            proxied = real.set(host="127.0.0.1", port=proxy.port).render_as_string(False)
            metrics_port = free_port()
            env = {
                "MODQ_DATABASE_URL": proxied,
                "MODQ_STORAGE_BREAKER_FAILURES": "2",
                "MODQ_STORAGE_BREAKER_PROBE_S": "0.5",
                "MODQ_WORKER_METRICS_PORT": str(metrics_port),
            }
            with running_worker(env, log_dir=tmp_path, threads=4) as worker:
                before = [
                    moderate.delay(content_id=f"brk-a{i}", content=f"a {i}") for i in range(10)
                ]
                for job in before:
                    job.get(timeout=60)

                proxy.stop()  # the database is "down"
                during = [
                    moderate.delay(content_id=f"brk-b{i}", content=f"b {i}") for i in range(40)
                ]
                wait_until(
                    lambda: _health(metrics_port)["checks"]["storage_breaker"] != "ok",
                    timeout_s=30,
                    message="the breaker never opened",
                )
                assert _metric(metrics_port, "modq_worker_db_breaker_state") >= 1
                time.sleep(3)  # in-hand jobs fail fast and go back on the queue
                retries_then = _metric(metrics_port, "modq_worker_jobs_total", state="RETRY")
                time.sleep(4)
                retries_now = _metric(metrics_port, "modq_worker_jobs_total", state="RETRY")
                waiting = queues.depths(["normal"])["normal"]
                assert retries_now == retries_then, "retries kept climbing while paused"
                assert waiting >= 20, f"only {waiting} jobs waited on the broker"
                assert "database breaker open" in worker.log.read_text()

                proxy.resume()  # the database is back
                wait_until(
                    lambda: _health(metrics_port)["checks"]["storage_breaker"] == "ok",
                    timeout_s=30,
                    message="the breaker never closed",
                )
                for job in during:
                    assert job.get(timeout=120)["content_id"].startswith("brk-b")
        engine = make_engine(database.url)
        with engine.connect() as connection:
            rows = connection.exec_driver_sql(
                "SELECT content_id, count(*) FROM moderation_results GROUP BY content_id"
            ).all()
        engine.dispose()
    stored = dict(rows)
    assert len(stored) == 50, f"{50 - len(stored)} jobs lost"
    assert set(stored.values()) == {1}, "duplicate rows"
    flush_private_redis()
