"""What a worker checks at start (tasks/startup_checks.py), and the producer's half of it.

A Redis with neither AOF nor RDB lost 148 queued jobs on a restart and nothing warned (issue
12, part 3): such a worker now refuses to start unless MODQ_ALLOW_VOLATILE_BROKER=1. A job
scheduled past the visibility timeout was held in 3 copies: the visibility timeout is checked
against the longest retry delay and the longest countdown, and producers refuse a countdown
or ETA past the limit.
"""

from __future__ import annotations

import datetime as dt
import logging
import os

import pytest

from cli.services import RedisServer, start_worker, stop_worker
from modq.errors import InvalidContent
from modq.settings import Settings
from tasks.startup_checks import (
    check_broker_persistence,
    check_visibility_timeout,
    longest_retry_delay_s,
)


@pytest.fixture
def servers():
    started: list[RedisServer] = []

    def start(persistence: str, password: str | None = None) -> RedisServer:
        server = RedisServer(persistence=persistence, password=password)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def test_a_worker_refuses_to_start_on_a_volatile_redis(servers, tmp_path):
    volatile = servers("none")
    log = tmp_path / "worker.log"
    worker = start_worker(
        {
            "MODQ_REDIS_URL": volatile.url,
            "MODQ_ALLOW_VOLATILE_BROKER": "0",
            "MODQ_DATABASE_URL": f"sqlite:///{tmp_path / 'r.db'}",
        },
        threads=1,
        log_path=log,
    )
    try:
        returncode = worker.wait(120)
    finally:
        stop_worker(worker)
    assert returncode != 0
    assert "keeps nothing on disk" in log.read_text()
    assert "MODQ_ALLOW_VOLATILE_BROKER=1" in log.read_text()


def test_volatile_is_refused_unless_allowed_then_logged_as_an_error(servers, caplog):
    url = servers("none").url
    with pytest.raises(SystemExit, match="keeps nothing on disk"):
        check_broker_persistence(url, Settings(allow_volatile_broker=False))
    with caplog.at_level(logging.WARNING, logger="tasks.startup_checks"):
        check_broker_persistence(url, Settings(allow_volatile_broker=True))
    assert [r.levelno for r in caplog.records] == [logging.ERROR]
    assert "keeps nothing on disk" in caplog.records[0].getMessage()


@pytest.mark.parametrize(
    ("persistence", "expected"), [("aof", []), ("rdb", ["RDB snapshots only"])]
)
def test_a_persistent_redis_passes(servers, caplog, persistence, expected):
    url = servers(persistence).url
    with caplog.at_level(logging.WARNING, logger="tasks.startup_checks"):
        check_broker_persistence(url, Settings(allow_volatile_broker=False))
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == len(expected)
    for message, fragment in zip(messages, expected, strict=True):
        assert fragment in message


def test_an_acl_that_refuses_config_is_said_so(servers, caplog):
    """The ACL user of docs/redis.md has no CONFIG: AOF is read from INFO instead; without
    AOF the worker says it could not tell, and why."""
    aof = servers("aof", password="s3cret-aof")
    volatile = servers("none", password="s3cret-none")
    with caplog.at_level(logging.WARNING, logger="tasks.startup_checks"):
        check_broker_persistence(aof.url, Settings())
        assert caplog.records == []
        check_broker_persistence(volatile.url, Settings())  # cannot tell: warned, not refused
    (record,) = caplog.records
    assert "CONFIG refused" in record.getMessage()
    assert "s3cret" not in record.getMessage()


def test_the_visibility_timeout_is_checked_against_retries_and_countdowns(caplog):
    from tasks import app

    modq_tasks = [t for name, t in app.tasks.items() if name.startswith("modq.")]
    longest_s = longest_retry_delay_s(modq_tasks)
    assert longest_s >= 60  # the retry schedule's cap (tasks.retry_policy or task options)
    assert check_visibility_timeout(Settings(visibility_timeout_s=3_600), modq_tasks) == []
    with caplog.at_level(logging.ERROR, logger="tasks.startup_checks"):
        problems = check_visibility_timeout(Settings(visibility_timeout_s=30), modq_tasks)
    assert len(problems) == 1 and "longest retry delay" in problems[0]
    assert caplog.records[0].getMessage() == problems[0]
    problems = check_visibility_timeout(
        Settings(visibility_timeout_s=3_600, max_countdown_s=7_200), modq_tasks
    )
    assert len(problems) == 1 and "countdown/ETA" in problems[0]


def test_producers_refuse_a_countdown_or_eta_past_the_visibility_timeout(database):
    from redis import Redis

    from tasks import moderate

    broker = Redis.from_url(os.environ["MODQ_REDIS_URL"])
    job = {"content_id": "later", "content": "see you tomorrow"}
    with pytest.raises(InvalidContent, match="at most 1800 s ahead") as refused:
        moderate.apply_async(kwargs=job, countdown=2 * 3_600)
    assert refused.value.details["field"] == "countdown"
    far = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    with pytest.raises(InvalidContent, match="at most 1800 s ahead"):
        moderate.apply_async(kwargs=job, eta=far)
    with pytest.raises(InvalidContent):
        moderate.apply_async(kwargs=job, countdown="soon")
    assert broker.llen("normal") == 0  # nothing enqueued
    moderate.apply_async(kwargs=job, countdown=60)  # within the limit: accepted
    assert broker.llen("normal") == 1


def test_a_worker_holds_its_own_far_retry_but_no_raw_eta_in_2999() -> None:
    """A retry's countdown (a webhook's backoff, up to ``webhook_backoff_max_s``) beyond
    ``max_countdown_s`` is the worker's own: the producer lets it pass (``check_schedule``), so
    the worker must too; the old check dead-lettered it as ``eta_too_far``. A message that only
    claims to be a retry is still bounded by what a worker itself schedules."""
    import datetime as dt

    from tasks.schedules import eta_problem

    settings = Settings(max_countdown_s=30, webhook_backoff_max_s=600, retry_delay_max_s=60)

    def headers(ahead_s: float, **extra: object) -> dict[str, object]:
        eta = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=ahead_s)
        return {"eta": eta.isoformat(), **extra}

    assert eta_problem(headers(590, retries=3), settings) is None  # a webhook backoff
    assert eta_problem(headers(590), settings) is not None  # a first send that far: refused
    assert eta_problem(headers(590, retries=0), settings) is not None
    assert eta_problem(headers(2 * 600, retries=3), settings) is not None  # past own delays
    far = {"eta": "2999-01-01T00:00:00+00:00", "retries": 1}
    assert eta_problem(far, settings) is not None  # never held in copies
    assert eta_problem(headers(590, retries=True), settings) is not None  # not a count
