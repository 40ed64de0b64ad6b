"""Raw messages that skipped the producer's checks, on a real worker process and a private
Redis (issue 20's smaller gaps): every one ends stored, as a typed failure its caller sees, or
dead-lettered with the right reason, and is held or run once.

- a message with an id and no task name: its caller gets ``PoisonMessage``, not silence;
- an ETA in year 2999: refused once at receipt (``eta_too_far``), never held in ``unacked``
  (where each visibility timeout made another copy of it);
- ``expires`` in the past, at receipt or while the job waited for its ETA: ``JobExpired``
  FAILURE and a dead-letter entry (reason ``expired``), not a bare REVOKED; `modq dlq retry`
  runs it;
- parking reasons: a JSON object that is no kombu envelope is a ``bad_envelope`` (it decodes),
  JSON only a laxer decoder reads (a bare ``0x10``) is ``undecodable``.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from modq.broker.dead_letters import DeadLetter, get_dead_letters
from modq.errors import JobExpired, PoisonMessage
from tasks import app, moderate
from tests.polling import wait_until
from tests.workers import WorkerHandle, running_worker

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def stock(redis_url: str) -> list[dict[str, Any]]:
    """Real messages of modq's producer, taken off their queue before the worker starts."""
    from tests.workers import flush_private_redis

    flush_private_redis()
    redis, messages = Redis.from_url(redis_url), []
    for i in range(8):
        moderate.delay(content_id=f"hostile-{i}", content=f"an ordinary comment {i}")
        raw = redis.rpop("normal")
        assert raw is not None
        messages.append(dict(json.loads(raw)))
    return messages


@pytest.fixture(scope="module")
def worker(
    stock: list[dict[str, Any]], model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerHandle]:
    import migrations
    from tests.workers import flush_private_redis

    root = tmp_path_factory.mktemp("hostile")
    database = f"sqlite:///{root / 'results.db'}"
    migrations.upgrade(database)
    with running_worker({"MODQ_DATABASE_URL": database}, log_dir=root, threads=2) as handle:
        yield handle
    flush_private_redis()


@pytest.fixture
def redis(redis_url: str) -> Redis:
    return Redis.from_url(redis_url)


@pytest.fixture
def template(stock: list[dict[str, Any]], worker: WorkerHandle) -> dict[str, Any]:
    """One of the stock messages, under a task id and delivery tag of its own."""
    message = stock.pop()
    message["headers"]["id"] = message["properties"]["correlation_id"] = uuid.uuid4().hex
    message["properties"]["delivery_tag"] = uuid.uuid4().hex
    return message


def push(redis: Redis, message: dict[str, Any] | bytes) -> None:
    """Onto ``normal`` as a raw writer would: no producer checks, no doorbell."""
    redis.lpush("normal", message if isinstance(message, bytes) else json.dumps(message))


def entries_for(task_id: str) -> list[DeadLetter]:
    return [e for e in get_dead_letters().entries() if e.task_id == task_id]


def entry_of(raw: bytes) -> DeadLetter | None:
    return next((e for e in get_dead_letters().entries() if e.raw() == raw), None)


def at(seconds_from_now: float) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds_from_now)).isoformat()


def test_the_caller_of_a_message_that_names_no_task_gets_a_typed_failure(
    worker: WorkerHandle, redis: Redis, template: dict[str, Any]
) -> None:
    message = template
    del message["headers"]["task"]
    task_id = message["headers"]["id"]
    push(redis, message)
    with pytest.raises(PoisonMessage, match="bad_message"):
        app.AsyncResult(task_id).get(timeout=60)
    (entry,) = entries_for(task_id)
    assert (entry.kind, entry.reason) == ("poison", "bad_message")
    assert worker.process.poll() is None


def test_an_eta_in_year_2999_is_refused_once_and_never_held(
    worker: WorkerHandle, redis: Redis, template: dict[str, Any]
) -> None:
    message = json.loads(json.dumps(template))
    message["headers"]["eta"] = "2999-01-01T00:00:00+00:00"
    task_id = message["headers"]["id"]
    push(redis, message)
    with pytest.raises(PoisonMessage, match="eta_too_far"):
        app.AsyncResult(task_id).get(timeout=60)
    (entry,) = entries_for(task_id)
    assert entry.reason == "eta_too_far" and "ETA" in entry.error
    # not held: nothing left in unacked for the visibility sweep to hand out again
    wait_until(lambda: redis.hlen("unacked") == 0, timeout_s=30, message="still held")
    # an ETA within the bound still runs, once
    soon = template
    soon["headers"]["id"] = soon["properties"]["correlation_id"] = uuid.uuid4().hex
    soon["properties"]["delivery_tag"] = uuid.uuid4().hex
    soon["headers"]["eta"] = at(1.0)
    push(redis, soon)
    assert app.AsyncResult(soon["headers"]["id"]).get(timeout=60)["decision"]


def test_a_job_expired_at_receipt_ends_as_a_typed_failure_and_is_dead_lettered(
    worker: WorkerHandle, redis: Redis, template: dict[str, Any]
) -> None:
    from cli.dlq_cmds import resend

    message = template
    message["headers"]["expires"] = at(-60)
    task_id = message["headers"]["id"]
    push(redis, message)
    result = app.AsyncResult(task_id)
    with pytest.raises(JobExpired, match="expired"):
        result.get(timeout=60)
    assert result.state == "FAILURE"  # not REVOKED
    (entry,) = entries_for(task_id)
    assert (entry.kind, entry.reason) == ("expired", "expired")
    assert json.loads(entry.raw())["headers"]["id"] == task_id  # the whole message
    assert resend(entry) == task_id  # `modq dlq retry`: it runs under its old id
    wait_until(
        lambda: app.AsyncResult(task_id).state == "SUCCESS", timeout_s=60, message="not rerun"
    )


def test_a_job_that_expires_while_it_waits_for_its_eta_ends_as_a_typed_failure(
    worker: WorkerHandle, redis: Redis, template: dict[str, Any]
) -> None:
    message = template
    message["headers"]["eta"] = at(2.0)
    message["headers"]["expires"] = at(1.0)  # passes while the worker holds it
    task_id = message["headers"]["id"]
    push(redis, message)
    result = app.AsyncResult(task_id)
    with pytest.raises(JobExpired):
        result.get(timeout=60)
    assert result.state == "FAILURE"
    (entry,) = entries_for(task_id)
    assert (entry.kind, entry.reason) == ("expired", "expired")


def test_parking_reasons_say_what_is_wrong_with_the_item(
    worker: WorkerHandle, redis: Redis, template: dict[str, Any]
) -> None:
    not_an_envelope = json.dumps({"foo": 1, "marker": uuid.uuid4().hex}).encode()
    text = json.dumps(template)
    lax = text.replace('"priority": 0', '"priority": 0x10', 1).encode()  # Lua's cjson reads it
    assert lax != text.encode()
    push(redis, not_an_envelope)
    push(redis, lax)
    entry = wait_until(lambda: entry_of(not_an_envelope), timeout_s=60, message="not parked")
    assert entry.reason == "bad_envelope"  # it decodes: JSON, but no kombu message
    entry = wait_until(lambda: entry_of(lax), timeout_s=60, message="not parked")
    assert entry.reason == "undecodable"  # Python's decoder, the one that counts, refuses it
    assert worker.process.poll() is None


def test_a_job_that_expires_calls_its_errbacks(
    worker: WorkerHandle, redis: Redis, template: dict[str, Any]
) -> None:
    """A job with a ``link_error`` (a ``callback_url``'s ``job.failed`` webhook) that expires
    before it runs: its errback is sent with the job id, as for any other failure (the old
    code stored the failure with no request, so Celery called no errback)."""
    import base64

    queue = f"modq-test-errbacks-{uuid.uuid4().hex[:8]}"
    message = template
    args, kwargs, embed = json.loads(base64.b64decode(message["body"]))
    errback = {
        "task": "modq.deliver_webhook",
        "args": [],
        "kwargs": {
            "callback_url": "https://hooks.example.com/modq",
            "job_id": template["headers"]["id"],
            "event": "job.failed",
        },
        "options": {"queue": queue},
        "subtask_type": None,
        "immutable": False,
    }
    embed = {**embed, "errbacks": [errback]}
    message["body"] = base64.b64encode(json.dumps([args, kwargs, embed]).encode()).decode()
    message["headers"]["expires"] = at(-60)
    task_id = message["headers"]["id"]
    push(redis, message)
    with pytest.raises(JobExpired):
        app.AsyncResult(task_id).get(timeout=60)
    sent = wait_until(lambda: redis.rpop(queue), timeout_s=30, message="no errback sent")
    envelope = json.loads(sent)
    assert envelope["headers"]["task"] == "modq.deliver_webhook"
    sent_args, sent_kwargs, _ = json.loads(base64.b64decode(envelope["body"]))
    assert sent_args == [task_id] and sent_kwargs["event"] == "job.failed"
    redis.delete(queue)
