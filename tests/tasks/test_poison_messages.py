"""Poison messages are parked, never fatal (issue 12 part 1): each malformed shape, pushed
raw onto a real queue beside good jobs, goes to the dead-letter queue with its reason, and the
same worker process answers every good job."""

from __future__ import annotations

import json
import urllib.request
import uuid

import pytest
from kombu import Connection, Consumer, Exchange, Producer, Queue
from redis import Redis

from bench.faults.poison import MARKER, MUTATIONS, poison_shapes
from cli.services import free_port
from modq.broker.dead_letters import get_dead_letters
from modq.broker.transport import PARKED_KEY
from modq.errors import InvalidContent, PoisonMessage
from tasks import app, moderate
from tests.polling import wait_until
from tests.rabbitmq.fixtures import rabbit_node  # noqa: F401  # a fixture
from tests.workers import running_worker

pytestmark = pytest.mark.integration

EXPECTED_REASONS = {
    "body not base64": "bad_envelope",
    "body of the wrong shape": "bad_arguments",
    "unknown body_encoding": "bad_envelope",
    "bad datetime": "bad_envelope",
    "headers a list": "bad_envelope",
    "delivery_info a string": "bad_message",
    "body not JSON": "bad_message",
    "content missing": "bad_arguments",
    "arguments of the wrong type": "bad_arguments",
    "lone surrogate": "undecodable",
}


def template(redis: Redis) -> dict[str, object]:
    """A real message of modq's producer, taken off its queue before a worker sees it."""
    moderate.apply_async(kwargs={"content_id": "template", "content": MARKER}, queue="normal")
    raw = redis.rpop("normal")
    assert raw is not None
    return dict(json.loads(raw))


def celery_rejects(raw: bytes) -> dict[str, bytes]:
    """Messages Celery rejects before any strategy: no task header, a task nobody runs."""
    nameless, unknown = json.loads(raw), json.loads(raw)
    del nameless["headers"]["task"]
    unknown["headers"]["task"] = "modq.no_such_task"
    for message in (nameless, unknown):
        message["properties"]["delivery_tag"] = message["headers"]["id"] = uuid.uuid4().hex
    return {
        "no task header": json.dumps(nameless).encode(),
        "unknown task": json.dumps(unknown).encode(),
    }


def test_every_poison_shape_is_dead_lettered_and_the_same_worker_serves_every_good_job(
    model_dir, database, tmp_path, redis_url
):
    redis = Redis.from_url(redis_url)
    shapes = poison_shapes(template(redis))
    assert set(shapes) == set(MUTATIONS) == set(EXPECTED_REASONS)
    port = free_port()
    env = {"MODQ_DATABASE_URL": database, "MODQ_WORKER_METRICS_PORT": str(port)}
    # messages Celery turns away itself
    rejected = celery_rejects(shapes["arguments of the wrong type"][1])
    with running_worker(env, log_dir=tmp_path, threads=2) as worker:
        pid = worker.stats()["pid"]
        good = []
        for shape, raw in [*((s, raw) for s, (_, raw) in shapes.items()), *rejected.items()]:
            redis.lpush("normal", raw)  # a foreign producer: no doorbell, no validation
            good.append(moderate.delay(content_id=f"good-{len(good)}", content=f"fine {shape}"))
        answers = [job.get(timeout=60) for job in good]
        assert [a["content_id"] for a in answers] == [f"good-{i}" for i in range(len(good))]
        for task_id, _ in shapes.values():  # each waiting caller returns, typed
            with pytest.raises(PoisonMessage):
                app.AsyncResult(task_id).get(timeout=30)
        assert worker.process.poll() is None and worker.stats()["pid"] == pid  # no restart
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            scraped = reply.read().decode()
        log = worker.log.read_text()

    entries = {entry.task_id or entry.id: entry for entry in get_dead_letters().entries()}
    assert {task_id for task_id, _ in shapes.values()} <= set(entries)
    for shape, (task_id, raw) in shapes.items():
        entry = entries[task_id]
        assert (entry.kind, entry.reason) == ("poison", EXPECTED_REASONS[shape]), shape
        assert entry.raw() == raw and entry.error
    others = sorted((e.reason, e.task) for e in entries.values() if e.task_id is None)
    assert others == [("bad_message", None), ("unknown_task", "modq.no_such_task")]
    assert redis.hlen("unacked") == 0 and redis.zcard("unacked_index") == 0
    assert redis.llen(PARKED_KEY) == 0  # folded into the dead-letter queue
    assert f"modq_dead_letters {float(len(entries))}" in scraped
    assert "Unrecoverable error" not in log
    assert log.count("modq: dead-lettered poison message") == len(shapes) + len(rejected)
    assert MARKER not in log  # logged without content


def test_a_message_missing_content_fails_typed_not_with_a_bare_type_error(
    model_dir, database, tmp_path
):
    with running_worker({"MODQ_DATABASE_URL": database}, log_dir=tmp_path, threads=2):
        raw = app.send_task("modq.moderate", kwargs={"content_id": "no-content"}, queue="normal")
        with pytest.raises(InvalidContent, match="missing a required argument: 'content'"):
            raw.get(timeout=60)
        assert raw.state == "FAILURE"
    (entry,) = get_dead_letters().entries()
    assert entry.reason == "bad_arguments" and entry.task_id == raw.id


# --- the transport alone (no worker): a consumer on the session's own Redis ---------------

DB = 12
EXCHANGE = Exchange("poison-test", type="direct")
QUEUE = Queue("poison-test", EXCHANGE, routing_key="poison-test")


@pytest.fixture
def broker_url(redis_url: str):
    url = redis_url.rsplit("/", 1)[0] + f"/{DB}"
    get_dead_letters(redis_url).purge()
    yield url
    Redis.from_url(url).flushdb()
    get_dead_letters(redis_url).purge()


def _connect(url: str) -> Connection:
    return Connection(url, transport=app.conf.broker_transport)


def test_the_transport_dead_letters_a_message_kombu_cannot_build_and_delivers_the_next(
    broker_url,
):
    raw = Redis.from_url(broker_url)
    received: list[object] = []
    with _connect(broker_url) as connection:
        Producer(connection.channel()).publish(
            {"job": "good"}, exchange=EXCHANGE, routing_key="poison-test", declare=[QUEUE]
        )
        good = json.loads(raw.lpop("poison-test"))
        bad = json.loads(json.dumps(good))
        bad["properties"].update(delivery_tag="bad-tag", body_encoding="rot13")
        later = json.loads(json.dumps(good))
        later["properties"]["delivery_tag"] = "later-tag"
        later["headers"] = {"eta": {"__type__": "datetime", "__value__": "never"}}
        raw.lpush("poison-test", json.dumps(bad), json.dumps(later), json.dumps(good))
        with Consumer(
            connection.channel(),
            queues=[QUEUE],
            callbacks=[lambda body, message: (received.append(body), message.ack())],
        ):
            while not received:
                connection.drain_events(timeout=10)
    assert received == [{"job": "good"}]
    reasons = sorted((e.reason, e.error.split(":")[0]) for e in get_dead_letters().entries())
    assert reasons == [("bad_envelope", "AttributeError"), ("bad_envelope", "ValueError")]
    assert raw.hlen("unacked") == 0 and raw.zcard("unacked_index") == 0


def test_items_left_on_the_old_parked_list_are_folded_into_the_dead_letter_queue(broker_url):
    raw = Redis.from_url(broker_url)
    raw.lpush(PARKED_KEY, b"left by an older modq")
    with _connect(broker_url) as connection:
        Producer(connection.channel()).publish(
            {"job": 1}, exchange=EXCHANGE, routing_key="poison-test", declare=[QUEUE]
        )
        with Consumer(connection.channel(), queues=[QUEUE], callbacks=[lambda b, m: m.ack()]):
            connection.drain_events(timeout=10)
    wait_until(lambda: raw.llen(PARKED_KEY) == 0, timeout_s=5, message="not folded")
    (entry,) = get_dead_letters().entries()
    assert entry.reason == "undecodable" and entry.raw() == b"left by an older modq"


def test_a_poison_message_stays_in_unacked_while_the_dead_letter_store_is_away(
    broker_url, monkeypatch
):
    """Parked before it leaves unacked: with no store to park it in, it is kept for later
    (the visibility timeout brings it back), and the consumer goes on."""
    from cli.services import free_port
    from modq.settings import get_settings

    monkeypatch.setenv("MODQ_DEAD_LETTERS_URL", f"redis://127.0.0.1:{free_port()}/0")
    get_settings.cache_clear()
    raw = Redis.from_url(broker_url)
    received: list[object] = []
    with _connect(broker_url) as connection:
        Producer(connection.channel()).publish(
            {"job": "good"}, exchange=EXCHANGE, routing_key="poison-test", declare=[QUEUE]
        )
        good = json.loads(raw.lpop("poison-test"))
        bad = json.loads(json.dumps(good))
        bad["properties"].update(delivery_tag="kept-tag", body_encoding="rot13")
        raw.lpush("poison-test", json.dumps(bad), json.dumps(good))
        with Consumer(
            connection.channel(),
            queues=[QUEUE],
            callbacks=[lambda body, message: (received.append(body), message.ack())],
        ):
            while not received:
                connection.drain_events(timeout=10)
    assert received == [{"job": "good"}]
    assert raw.hkeys("unacked") == [b"kept-tag"]


# --- on RabbitMQ: the strategy guard and Celery's rejections park alike --------------------


AMQP_SHAPES = {  # shape -> the reason it is parked with
    "body not JSON": "bad_message",
    "body of the wrong shape": "bad_arguments",
    "content missing": "bad_arguments",
    "bad eta": "bad_message",
    "no task header": "bad_message_rejected",
    "unknown task": "unknown_task",
}


def _amqp_poison(task_id: str) -> dict[str, tuple[bytes, dict[str, object]]]:
    """Raw messages a foreign AMQP producer could send: ``{shape: (body, headers)}``."""
    headers = {"lang": "py", "task": "modq.moderate", "id": task_id, "root_id": task_id}
    embed = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
    good_args = json.dumps([[], {"content_id": "p", "content": MARKER}, embed]).encode()
    missing = json.dumps([[], {"content_id": "p"}, embed]).encode()
    return {
        "body not JSON": (b"\xff{" + MARKER.encode(), headers),
        "body of the wrong shape": (json.dumps({"c": MARKER}).encode(), headers),
        "content missing": (missing, headers),
        "bad eta": (good_args, {**headers, "eta": "not a date"}),
        "no task header": (good_args, {"id": task_id}),
        "unknown task": (good_args, {**headers, "task": "modq.nope"}),
    }


@pytest.mark.slow
def test_poison_messages_on_rabbitmq_are_dead_lettered_and_the_worker_serves_on(
    rabbit_node,  # noqa: F811  (the fixture imported above)
    model_dir,
    database,
    tmp_path,
):

    from tests.rabbitmq.fixtures import rabbitmq_vhost

    env = {"MODQ_DATABASE_URL": database}
    sent: dict[str, str] = {}  # shape -> task id
    with (
        rabbitmq_vhost(rabbit_node),
        running_worker(env, log_dir=tmp_path, threads=2) as worker,
    ):
        pid = worker.stats()["pid"]
        good = []
        with app.connection_for_write() as connection:
            producer = Producer(connection)
            for shape in AMQP_SHAPES:
                task_id = sent[shape] = f"amqp-{uuid.uuid4().hex[:10]}"
                body, headers = _amqp_poison(task_id)[shape]
                producer.publish(
                    body,
                    exchange="",  # the default exchange: straight onto the queue
                    routing_key="normal",
                    headers=headers,
                    content_type="application/json",
                    content_encoding="utf-8",
                    delivery_mode=2,
                )
                good.append(moderate.delay(content_id=f"amqp-good-{shape}", content="fine"))
        assert [job.get(timeout=60)["content_id"] for job in good] == [
            f"amqp-good-{shape}" for shape in AMQP_SHAPES
        ]
        for shape, reason in AMQP_SHAPES.items():
            if reason not in ("bad_message_rejected", "unknown_task"):  # Celery answers those
                with pytest.raises(PoisonMessage):
                    app.AsyncResult(sent[shape]).get(timeout=30)
        assert worker.process.poll() is None and worker.stats()["pid"] == pid
        log = worker.log.read_text()
    reasons = sorted(entry.reason for entry in get_dead_letters().entries())
    expected = [r.replace("_rejected", "") for r in AMQP_SHAPES.values()]
    assert reasons == sorted(expected)
    assert MARKER not in log and "Unrecoverable error" not in log
