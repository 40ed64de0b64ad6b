"""Urgent stays first under every Celery operation, with a real worker: urgent jobs sent behind
1,000 queued bulk jobs finish while bulk work is still waiting, after add/cancel consumer, at
the lowest message priority, after a retry, and across a worker restart.

The worker serves a tiny model with 2 task threads and a 10 ms batch wait, so the bulk backlog
(100 ``moderate_many`` messages of 10 items, or 1,000 one-item messages where a retry's
backoff or a restart needs a longer backlog) takes seconds to drain while an urgent job takes
milliseconds.

Every test runs on both brokers (the ``broker`` fixture): the session's private Redis, and a
private RabbitMQ node (tests/rabbitmq/fixtures.py) with modq's quorum queues.
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

import migrations
from modq import moderate, moderate_many
from modq.broker.amqp import AmqpQueues, amqp_queue, is_amqp
from modq.broker.queues import BrokerQueues
from tasks import app
from tests.conftest import postgres_database
from tests.rabbitmq.fixtures import rabbit_node, rabbitmq_vhost  # noqa: F401  # fixture
from tests.workers import WorkerHandle, running_worker, wait_for_retry
from tests.workers import flush_private_redis as _flush_redis

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BACKLOG_JOBS = 1_000
URGENT_JOBS = 5
THREADS = 2


def _env(model_dir: Path, database_url: str) -> dict[str, str]:
    return {
        "MODQ_DATABASE_URL": database_url,
        "MODQ_MODEL_DIR": str(model_dir),
        "MODQ_MAX_WAIT_MS": "10",
        "MODQ_RECORD_WAIT_TIME": "0",
    }


@pytest.fixture(scope="module", params=["redis", "rabbitmq"])
def broker(request: pytest.FixtureRequest) -> Iterator[str]:
    """The broker URL every test of the module runs on: the private Redis, then RabbitMQ."""
    if request.param == "redis":
        yield os.environ["MODQ_REDIS_URL"]
        return
    with rabbitmq_vhost(request.getfixturevalue("rabbit_node")) as url:
        yield url


def flush_private_redis() -> None:
    """Empty the private Redis (results, and the queues when it is the broker) and, on
    RabbitMQ, the three queues."""
    _flush_redis()
    if is_amqp(str(app.conf.broker_url)):
        app.control.purge()


def _waiting(queue: str) -> int:
    if is_amqp(str(app.conf.broker_url)):
        return AmqpQueues.from_app(app).depths([queue])[queue]
    return BrokerQueues.from_app(app).depths([queue])[queue]


@pytest.fixture(scope="class")
def worker(
    broker: str, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """One worker for the tests of a class (stopped before the tests that start their own)."""
    flush_private_redis()
    root = tmp_path_factory.mktemp("urgency")
    url = f"sqlite:///{root / 'results.db'}"
    migrations.upgrade(url)
    with running_worker(_env(tiny_model_dir, url), log_dir=root, threads=THREADS) as handle:
        yield handle
    flush_private_redis()


@pytest.fixture(scope="module")
def stock(broker: str) -> Iterator[Celery]:
    """An app with only celery, the broker URL and JSON (on RabbitMQ also modq's queue
    declarations, which RabbitMQ requires to match: docs/rabbitmq.md)."""
    backend = os.environ["MODQ_REDIS_URL"]
    stock_app = Celery("stock", broker=broker, backend=backend, set_as_current=False)
    stock_app.conf.update(task_serializer="json", accept_content=["json"])
    if is_amqp(broker):
        stock_app.conf.update(
            task_queues=[amqp_queue(name) for name in ("urgent", "normal", "bulk")]
        )
    yield stock_app
    stock_app.close()


def _bulk_backlog(*, one_item_messages: bool = False) -> list[Any]:
    """1,000 bulk jobs on the bulk queue: 100 messages of 10 items (cheap to send), or 1,000
    one-item messages (ten times longer to drain)."""
    tag = uuid.uuid4().hex[:6]
    if one_item_messages:
        return [
            moderate.delay(content_id=f"bulk-{tag}-{i}", content=f"bulk {i}", priority="bulk")
            for i in range(BACKLOG_JOBS)
        ]
    return [
        moderate_many.delay(
            items=[
                {"content_id": f"bulk-{tag}-{m}-{k}", "content": f"bulk text {m} {k}"}
                for k in range(10)
            ],
            priority="bulk",
        )
        for m in range(BACKLOG_JOBS // 10)
    ]


def _urgent(count: int = URGENT_JOBS) -> list[Any]:
    tag = uuid.uuid4().hex[:6]
    return [
        moderate.delay(content_id=f"urgent-{tag}-{i}", content=f"urgent {i}", priority="urgent")
        for i in range(count)
    ]


def _assert_urgent_first(urgent: list[Any], sent_s: float, operation: str) -> None:
    """Every urgent job done while bulk messages still wait; prints the figures."""
    finished_ms = []
    for job in urgent:
        job.get(timeout=120)
        finished_ms.append((time.monotonic() - sent_s) * 1000)
    waiting = _waiting("bulk")
    scheme = str(app.conf.broker_url).partition(":")[0]
    print(
        f"\n{scheme} {operation}: {len(urgent)} urgent done, "
        f"p50 {statistics.median(finished_ms):.0f} ms, "
        f"last {max(finished_ms):.0f} ms after sending; bulk messages still waiting: {waiting}"
    )
    assert waiting > 0, f"{operation}: the bulk backlog drained before the urgent jobs finished"


def _control(command: str, queue: str, worker: WorkerHandle) -> None:
    replies = getattr(app.control, command)(
        queue, destination=[worker.hostname], reply=True, timeout=5
    )
    assert replies and "ok" in next(iter(replies[0].values())), replies


class TestOnOneWorker:
    def test_urgent_re_added_by_add_consumer_stays_first(self, worker):
        """cancel_consumer + add_consumer (the CLI's and Flower's buttons) leave urgent last in
        Celery's list of queues; the worker still drains it first. The backlog is queued in
        full first, as in the next test (on RabbitMQ the worker drained all of it while the
        confirmed messages were being sent: 0 waiting when the urgent jobs finished)."""
        _control("cancel_consumer", "urgent", worker)
        _control("cancel_consumer", "bulk", worker)
        backlog = _bulk_backlog()
        _control("add_consumer", "bulk", worker)
        _control("add_consumer", "urgent", worker)  # last in the list, after bulk
        sent_s = time.monotonic()
        _assert_urgent_first(_urgent(), sent_s, "add_consumer")
        backlog[-1].get(timeout=120)

    def test_urgent_at_message_priority_9_stays_first(self, worker, stock):
        """On Redis 9 is the lowest message priority; a stock producer's urgent job sent with it
        still comes before bulk work at priority 0. The backlog is queued in full first: sending
        100 confirmed messages to RabbitMQ takes long enough for the worker to drain most of it
        meanwhile."""
        _control("cancel_consumer", "bulk", worker)
        backlog = _bulk_backlog()
        _control("add_consumer", "bulk", worker)
        sent_s = time.monotonic()
        urgent = [
            stock.send_task(
                "modq.moderate",
                kwargs={"content_id": f"p9-{i}", "content": "urgent", "priority": "urgent"},
                queue="urgent",
                priority=9,
            )
            for i in range(URGENT_JOBS)
        ]
        _assert_urgent_first(urgent, sent_s, "message priority 9")
        backlog[-1].get(timeout=120)


def test_a_retried_urgent_job_stays_first(broker, tiny_model_dir, tmp_path):
    """Urgent jobs that fail on a database outage are retried (Celery's autoretry, backoff);
    once the database is back they finish before a bulk backlog queued meanwhile."""
    flush_private_redis()
    with postgres_database(create=False) as database:
        env = _env(tiny_model_dir, database.url)
        with running_worker(env, log_dir=tmp_path, threads=THREADS) as handle:
            _control("cancel_consumer", "bulk", handle)  # only urgent jobs meet the outage
            backlog = _bulk_backlog(one_item_messages=True)  # the retry's backoff is seconds
            urgent = _urgent(3)
            for job in urgent:
                wait_for_retry(job)
            sent_s = time.monotonic()
            database.create()
            migrations.upgrade(database.url)
            _control("add_consumer", "bulk", handle)
            _assert_urgent_first(urgent, sent_s, "retry")
            assert all(job.result and not isinstance(job.result, Exception) for job in urgent)
            del backlog  # not drained: the worker's warm shutdown returns what it holds
    flush_private_redis()


def test_a_restarted_worker_takes_urgent_first(broker, tiny_model_dir, tmp_path):
    """A worker stopped mid-backlog (warm shutdown) and started again: the urgent jobs sent
    while it was down run before the rest of the backlog."""
    flush_private_redis()
    url = f"sqlite:///{tmp_path / 'results.db'}"
    migrations.upgrade(url)
    env = _env(tiny_model_dir, url)
    with running_worker(env, log_dir=tmp_path, threads=THREADS):
        backlog = _bulk_backlog(one_item_messages=True)  # outlasts the restart's model load
        backlog[0].get(timeout=60)  # the worker is draining the backlog when it stops
    urgent = _urgent()
    sent_s = time.monotonic()  # the urgent jobs wait for a worker from here
    with running_worker(env, log_dir=tmp_path, threads=THREADS):
        _assert_urgent_first(urgent, sent_s, "restart")
    flush_private_redis()
