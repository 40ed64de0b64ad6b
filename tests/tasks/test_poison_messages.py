"""Poison messages are parked, never fatal (issue 12 part 1): each malformed shape, pushed
raw onto a real queue beside good jobs, goes to the dead-letter queue with its reason, and the
same worker process answers every good job."""

from __future__ import annotations

import base64
import json
import time
import urllib.request
import uuid

import pytest
from kombu import Connection, Consumer, Exchange, Producer, Queue
from redis import Redis

from bench.faults.hostile_items import deep_shapes, huge_item, lua_only_shapes
from bench.faults.poison import EMBED, MARKER, MUTATIONS, identified, poison_shapes, push
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
    shape_ids = {task_id for task_id, _ in shapes.values()}
    others = sorted((e.reason, e.task) for key, e in entries.items() if key not in shape_ids)
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


def _guarded(connection: Connection):
    """A channel guarded as a modq worker's task channel is (``PoisonGuardStep``)."""
    channel = connection.channel()
    channel.guard_poison(max_message_bytes=1_048_576)
    return channel


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
            _guarded(connection),
            queues=[QUEUE],
            callbacks=[lambda body, message: (received.append(body), message.ack())],
        ):
            while not received:
                connection.drain_events(timeout=10)
    assert received == [{"job": "good"}]
    entries = get_dead_letters(broker_url).entries()  # the broker's own Redis
    reasons = sorted((e.reason, e.error.split(":")[0]) for e in entries)
    assert reasons == [("bad_envelope", "AttributeError"), ("bad_envelope", "ValueError")]
    assert raw.hlen("unacked") == 0 and raw.zcard("unacked_index") == 0


def test_items_left_on_the_old_parked_list_are_folded_into_the_dead_letter_queue(broker_url):
    raw = Redis.from_url(broker_url)
    raw.lpush(PARKED_KEY, b"left by an older modq")
    with _connect(broker_url) as connection:
        Producer(connection.channel()).publish(
            {"job": 1}, exchange=EXCHANGE, routing_key="poison-test", declare=[QUEUE]
        )
        with Consumer(_guarded(connection), queues=[QUEUE], callbacks=[lambda b, m: m.ack()]):
            connection.drain_events(timeout=10)
    wait_until(lambda: raw.llen(PARKED_KEY) == 0, timeout_s=5, message="not folded")
    (entry,) = get_dead_letters(broker_url).entries()
    assert entry.reason == "undecodable" and entry.raw() == b"left by an older modq"


def test_two_workers_folding_at_once_dead_letter_a_parked_item_once(broker_url):
    """Every guarded channel folds the parked list. It used to read it (LRANGE), park, then
    LREM: a second worker folding between the two parked the same item again, and `modq dlq
    retry` ran it twice. Here the second one folds while the first is parking (its store
    calls it back): the item was taken off the list first, so it is parked once."""
    from modq.broker.dead_letters import DeadLetters, store_for_broker

    raw = Redis.from_url(broker_url)
    with _connect(broker_url) as first, _connect(broker_url) as second:
        other = _guarded(second)  # folds the list (empty yet) as it starts
        raw.lpush(PARKED_KEY, b"left by an older modq")
        real = store_for_broker(raw)

        class ParkingWhileAnotherFolds(DeadLetters):
            def park(self, entry):  # a real park, with the other worker's fold inside it
                other.fold_parked()
                return real.park(entry)

        channel = first.channel()
        channel._dead_letters = ParkingWhileAnotherFolds(raw)
        channel.guard_poison(max_message_bytes=1_048_576)  # folds
    entries = get_dead_letters(broker_url).entries()
    assert [e.raw() for e in entries] == [b"left by an older modq"]
    assert raw.llen(PARKED_KEY) == 0 and raw.hlen("_modq.undecodable.claims") == 0


def test_a_parked_unacked_entry_keeps_the_reason_it_was_parked_for(broker_url):
    """An unacked entry that names no queue is readable JSON: it was dead-lettered as
    ``undecodable`` all the same. Its parked item carries its reason (``no_queue``)."""
    raw = Redis.from_url(broker_url)
    entry = json.dumps({"foo": 1, "marker": uuid.uuid4().hex}).encode()
    with _connect(broker_url) as connection:
        channel = _guarded(connection)
        raw.hset("unacked", "no-queue", entry)
        raw.zadd("unacked_index", {"no-queue": time.time() - 10_000})
        channel.qos.restore_visible(start=0, num=10, interval=1)
        assert raw.llen(PARKED_KEY) == 1
        channel.fold_parked()
    (letter,) = get_dead_letters(broker_url).entries()
    assert letter.raw() == entry and letter.reason == "no_queue"
    assert "names no queue" in letter.error
    assert raw.llen(PARKED_KEY) == 0


def test_parked_items_stay_on_the_list_while_the_dead_letter_store_is_away(broker_url):
    """Claimed, not parked (no store): every claimed item goes back on the list, no claim is
    left behind, and the next fold, with the store back, parks each once."""
    from cli.services import free_port
    from modq.broker.dead_letters import DeadLetters

    raw = Redis.from_url(broker_url)
    raw.lpush(PARKED_KEY, b"parked 1", b"parked 2")
    away = DeadLetters(Redis.from_url(f"redis://127.0.0.1:{free_port()}/0"))
    with _connect(broker_url) as connection:
        channel = connection.channel()
        channel._dead_letters = away
        channel.guard_poison(max_message_bytes=1_048_576)  # folds: the store is away
        assert sorted(raw.lrange(PARKED_KEY, 0, -1)) == [b"parked 1", b"parked 2"]
        assert raw.hlen("_modq.undecodable.claims") == 0
        channel._dead_letters = None  # the broker's own store
        channel.fold_parked()
    raws = sorted(e.raw() for e in get_dead_letters(broker_url).entries())
    assert raws == [b"parked 1", b"parked 2"] and raw.llen(PARKED_KEY) == 0


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
            _guarded(connection),
            queues=[QUEUE],
            callbacks=[lambda body, message: (received.append(body), message.ack())],
        ):
            while not received:
                connection.drain_events(timeout=10)
    assert received == [{"job": "good"}]
    (kept,) = raw.hvals("unacked")
    assert kept.endswith(json.dumps(bad).encode())


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


# --- items that used to stop every worker (issue 20) ---------------------------------------


def test_deep_lua_only_and_huge_items_with_a_ring_never_stop_the_worker(
    model_dir, database, tmp_path, redis_url
):
    """Pushed raw with a ring on the doorbell: an item nested 5,000 deep, envelopes whose body
    nests 5,000 deep or whose headers nest 985 deep (``RecursionError`` escaped the transport
    and the dead-letter path: every worker that fetched one died, and every restart), items
    Redis's cjson read and Python refuses (parked but left in ``unacked``), an item over
    ``MODQ_MAX_MESSAGE_BYTES`` (decoded whole inside Redis), a body that does not decompress
    (Celery's ``on_decode_error`` acknowledged it away). Each is dead-lettered and leaves
    ``unacked``; the same worker answers every good job; callers of the ones that name a task
    id get ``PoisonMessage``."""
    redis = Redis.from_url(redis_url)
    message = template(redis)
    compressed_id, compressed = identified(message)  # Celery's on_decode_error acked it away
    compressed["headers"]["compression"] = "application/x-gzip"
    shapes = {
        **deep_shapes(message),
        **lua_only_shapes(message),
        "too large": huge_item(message, 300_000),
        "a body that does not decompress": (compressed_id, json.dumps(compressed).encode()),
    }
    env = {"MODQ_DATABASE_URL": database, "MODQ_MAX_MESSAGE_BYTES": "65536"}
    with running_worker(env, log_dir=tmp_path, threads=2) as worker:
        pid = worker.stats()["pid"]
        good = []
        for shape, (_, raw) in shapes.items():
            push(redis_url, raw, ring=True)
            good.append(moderate.delay(content_id=f"good-{len(good)}", content=f"fine {shape}"))
        answers = [job.get(timeout=60) for job in good]
        assert [a["content_id"] for a in answers] == [f"good-{i}" for i in range(len(good))]
        typed = ("a body nested 5,000 deep", "a bare 0x10", "nan", "too large")
        for shape in (*typed, "a body that does not decompress"):
            with pytest.raises(PoisonMessage):
                app.AsyncResult(shapes[shape][0]).get(timeout=30)
        assert worker.process.poll() is None and worker.stats()["pid"] == pid  # no restart
        log = worker.log.read_text()
    entries = list(get_dead_letters().entries())
    assert len(entries) == len(shapes) and {e.kind for e in entries} == {"poison"}
    by_id = {entry.task_id: entry for entry in entries}
    deep = [e for e in entries if e.raw() == shapes["an item nested 5,000 deep"][1]]
    assert [e.reason for e in deep] == ["undecodable"]
    assert by_id[shapes["a bare 0x10"][0]].raw() == shapes["a bare 0x10"][1]
    assert by_id[shapes["nan"][0]].reason == by_id[shapes["a bare 0x10"][0]].reason
    large = by_id[shapes["too large"][0]]
    assert large.reason == "too_large" and large.message_bytes == len(shapes["too large"][1])
    assert shapes["too large"][1].startswith(large.raw())
    assert by_id[compressed_id].reason == "bad_message"
    assert redis.hlen("unacked") == 0 and redis.zcard("unacked_index") == 0
    assert "Unrecoverable error" not in log and MARKER not in log


def _orphan(message: dict[str, object], content_id: str) -> tuple[str, bytes]:
    task_id, orphan = identified(message)
    body = [[], {"content_id": content_id, "content": "an orphaned job"}, EMBED]
    orphan["body"] = base64.b64encode(json.dumps(body).encode()).decode()
    return task_id, json.dumps(orphan).encode()


def test_a_worker_started_past_the_visibility_timeout_restores_a_dead_workers_jobs(
    model_dir, database, tmp_path, redis_url
):
    """What a dead worker of the old transport left in ``unacked``: two jobs, and, indexed
    after them (the sweep meets it first), the entry of an item Redis's cjson read and Python
    refuses; and an entry that is no entry at all. The sweep decoded each entry with Python's
    JSON: a worker started past the visibility timeout exited 1 in ``restore_visible``, and
    the jobs behind that entry were never restored. Now the worker starts, both jobs are
    answered, the item is dead-lettered and its caller answered, the entry that names no queue
    is dead-lettered by the running worker (after its sweep), and ``unacked`` is empty."""
    redis = Redis.from_url(redis_url)
    message = template(redis)
    long_ago = time.time() - 7_200  # past the default visibility timeout (1 h)
    orphans = [_orphan(message, f"orphan-{i}") for i in range(2)]
    lua_id, lua_only = lua_only_shapes(message)["a bare 0x10"]
    left = [*orphans, (lua_id, lua_only)]
    for index, (task_id, raw) in enumerate(left):
        redis.hset("unacked", task_id, b"[" + raw + b',"","normal"]')  # as fetch.lua wrote
        redis.zadd("unacked_index", {task_id: long_ago + index})
    redis.hset("unacked", "no-entry", b"\x00 names no queue")
    redis.zadd("unacked_index", {"no-entry": long_ago})
    with running_worker({"MODQ_DATABASE_URL": database}, log_dir=tmp_path, threads=2) as worker:
        answers = [app.AsyncResult(task_id).get(timeout=60) for task_id, _ in orphans]
        assert [a["content_id"] for a in answers] == ["orphan-0", "orphan-1"]
        with pytest.raises(PoisonMessage):
            app.AsyncResult(lua_id).get(timeout=30)
        wait_until(lambda: redis.hlen("unacked") == 0, timeout_s=10, message="left unacked")
        wait_until(lambda: get_dead_letters().size() == 2, timeout_s=60, message="not folded")
        log = worker.log.read_text()
    entries = {entry.raw(): entry.reason for entry in get_dead_letters().entries()}
    assert entries == {lua_only: "undecodable", b"\x00 names no queue": "no_queue"}
    assert redis.llen(PARKED_KEY) == 0
    assert redis.zcard("unacked_index") == 0
    assert "Error in timer" not in log and "Unrecoverable error" not in log


def test_the_guard_is_the_workers_own_it_parks_into_its_broker_and_logs_what_happened(
    model_dir, database, tmp_path, redis_url
):
    """A worker whose ``MODQ_REDIS_URL`` is another database than its broker parks a poison
    item into the broker it came from. An app that uses pickle and shares that broker
    broadcasts a control command: the worker cannot decode it and drops it (as Celery does),
    and says so; it used to log it at CRITICAL as "dead-lettered" with nothing parked."""
    from celery import Celery

    other_db = redis_url.rsplit("/", 1)[0] + "/5"
    Redis.from_url(other_db).flushdb()
    env = {
        "MODQ_DATABASE_URL": database,
        "MODQ_BROKER_URL": redis_url,
        "MODQ_REDIS_URL": other_db,
    }
    pickle_app = Celery("an-app-that-uses-pickle", broker=redis_url, set_as_current=False)
    pickle_app.conf.update(task_serializer="pickle", accept_content=["pickle", "json"])
    with running_worker(env, log_dir=tmp_path, threads=2) as worker:
        push(redis_url, b"\xffnot a message", ring=True)
        wait_until(lambda: get_dead_letters(redis_url).size() == 1, timeout_s=30, message="")
        pickle_app.control.ping(timeout=0.5)
        wait_until(
            lambda: "dropped a control message" in worker.log.read_text(),
            timeout_s=30,
            message="the pickled broadcast never reached the worker",
        )
        log = worker.log.read_text()
    (entry,) = get_dead_letters(redis_url).entries()
    assert entry.reason == "undecodable" and entry.raw() == b"\xffnot a message"
    assert get_dead_letters(other_db).size() == 0
    assert log.count("modq: dead-lettered") == 1  # the poison item's line, and only it
    assert "CRITICAL" not in log
    Redis.from_url(other_db).flushdb()
