"""The Redis broker's atomic fetch (modq/broker/transport.py), on the session's own redis-server.

Each test uses its own Redis database number on that server and empties it after.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kombu import Connection, Consumer, Exchange, Producer, Queue
from redis import Redis

from modq.broker.dead_letters import get_dead_letters
from modq.broker.transport import DOORBELL_PREFIX, PARKED_KEY, Transport, doorbell_key
from modq.broker.unacked import split_parked
from tasks import app
from tests.polling import wait_until

DB = 11
EXCHANGE = Exchange("transport-test", type="direct")
QUEUE = Queue("transport-test", EXCHANGE, routing_key="transport-test")


@pytest.fixture
def broker_url(redis_url: str) -> Iterator[str]:
    url = redis_url.rsplit("/", 1)[0] + f"/{DB}"
    yield url
    Redis.from_url(url).flushdb()


def connect(url: str, **options: object) -> Connection:
    """A kombu connection the way the Celery app makes one (its broker_transport)."""
    return Connection(url, transport=app.conf.broker_transport, transport_options=options)


def publish(connection: Connection, body: dict[str, object]) -> None:
    Producer(connection.channel()).publish(
        body, exchange=EXCHANGE, routing_key="transport-test", declare=[QUEUE], serializer="json"
    )


def test_the_celery_app_consumes_redis_through_the_atomic_transport(broker_url):
    connection = connect(broker_url)
    assert isinstance(connection.transport, Transport)
    connection.release()


def test_a_fetched_message_is_in_unacked_before_the_consumer_has_read_it(broker_url):
    """The moment stock kombu loses a message: the broker has popped it and the worker dies
    before recording it. Here the script records it as it pops; the sweep brings it back."""
    raw = Redis.from_url(broker_url)
    with connect(broker_url, visibility_timeout=1) as dying:
        publish(dying, {"job": 1})
        channel = dying.channel()
        Consumer(channel, queues=[QUEUE], callbacks=[lambda body, message: None]).consume()
        dying.transport.cycle._register_BRPOP(channel)  # the fetch is sent
        wait_until(  # ... and the broker has popped the message
            lambda: raw.llen("transport-test") == 0, timeout_s=10, message="never fetched"
        )
        assert raw.hlen(channel.unacked_key) == 1
        assert raw.zcard(channel.unacked_index_key) == 1
        channel.client.connection.disconnect()  # the worker dies with the reply unread

    time.sleep(1.2)  # past the visibility timeout
    received: list[dict[str, object]] = []
    with connect(broker_url, visibility_timeout=1) as survivor:
        channel = survivor.channel()
        channel.qos.restore_visible(start=0, num=10, interval=1)
        assert raw.llen("transport-test") == 1 and raw.hlen(channel.unacked_key) == 0

        def on_message(body, message):
            received.append(body)
            message.ack()

        with Consumer(channel, queues=[QUEUE], callbacks=[on_message]):
            survivor.drain_events(timeout=10)
    assert received == [{"job": 1}]
    assert raw.hlen("unacked") == 0 and raw.zcard("unacked_index") == 0


def test_an_idle_consumer_is_woken_by_the_doorbell_not_its_timeout(broker_url):
    """With a 60 s look interval, only the producer's token can deliver within 10 s."""
    received: list[dict[str, object]] = []
    with connect(broker_url) as consumer_side, connect(broker_url) as producer_side:
        channel = consumer_side.channel()
        channel.look_interval = 60
        with Consumer(channel, queues=[QUEUE], callbacks=[lambda body, m: received.append(body)]):
            publish(producer_side, {"warm": True})  # declares the queue
            consumer_side.drain_events(timeout=10)
            late = threading.Timer(0.5, publish, (producer_side, {"job": 2}))
            late.start()  # sent while the consumer is already blocked on the doorbell
            consumer_side.drain_events(timeout=10)
            late.join()
    assert received == [{"warm": True}, {"job": 2}]
    tokens = Redis.from_url(broker_url).llen(doorbell_key("transport-test"))
    assert tokens <= 1  # one ring was spent waking the consumer


def test_a_plain_consumer_gets_the_decoders_error_for_an_item_python_refuses_and_keeps_it(
    broker_url,
):
    """Stock kombu raises a decoding error from ``drain_events``; so does a consumer on this
    transport that is not a modq worker's task channel. Nothing is dead-lettered for it, and
    the item, in ``unacked`` under the fetch's own tag, comes back after the visibility
    timeout byte for byte (stock kombu loses it: it was popped and never recorded)."""
    raw = Redis.from_url(broker_url)
    get_dead_letters().purge()
    with connect(broker_url, visibility_timeout=1) as connection:
        raw.rpush("transport-test", b"\xffnot json")
        channel = connection.channel()
        consumer = Consumer(channel, queues=[QUEUE], callbacks=[lambda b, m: None])
        with consumer, pytest.raises(ValueError):  # kombu's json.loads: not JSON
            connection.drain_events(timeout=10)
        assert raw.hlen("unacked") == 1 and raw.llen("transport-test") == 0
        time.sleep(1.2)  # past the visibility timeout
        channel.qos.restore_visible(start=0, num=10, interval=1)
    assert raw.lrange("transport-test", 0, -1) == [b"\xffnot json"]
    assert raw.hlen("unacked") == 0 and raw.zcard("unacked_index") == 0
    assert get_dead_letters().size() == get_dead_letters(broker_url).size() == 0


def test_a_plain_consumer_sees_its_callbacks_error_and_the_message_is_kept(broker_url):
    """As stock kombu: an exception in a plain consumer's callback is raised from
    ``drain_events``, not swallowed and dead-lettered; the message goes back to its queue when
    the channel closes."""
    raw = Redis.from_url(broker_url)
    get_dead_letters().purge()

    def fails(body, message):
        raise ValueError("the consumer's own bug")

    with connect(broker_url) as connection:
        publish(connection, {"job": "kept"})
        with Consumer(connection.channel(), queues=[QUEUE], callbacks=[fails]):
            with pytest.raises(ValueError, match="own bug"):
                connection.drain_events(timeout=10)
            assert raw.hlen("unacked") == 1
    assert raw.llen("transport-test") == 1 and raw.hlen("unacked") == 0
    assert json.loads(raw.lindex("transport-test", 0))["headers"]["redelivered"] is True
    assert get_dead_letters().size() == get_dead_letters(broker_url).size() == 0


def hostile_items(good: dict[str, Any]) -> dict[str, bytes]:
    """Items Python's decoder refuses (or that are too large), built from a real message."""
    control = json.dumps({**good, "headers": {"note": "CONTROL"}}).encode()
    nan = json.dumps({**good, "headers": {"score": 12345.5}}).encode()
    deep_headers = json.dumps({**good, "headers": {"x": "DEEP"}}).encode()
    return {
        "not JSON": b"\xffnot json",
        "nested 5,000 deep": b"[" * 5_000 + b"]" * 5_000,
        "headers nested 985 deep": deep_headers.replace(b'"DEEP"', b"[" * 985 + b"]" * 985),
        "a bare 0x10 (cjson reads it)": control.replace(b"CONTROL", b"a\x10b"),
        "nan (cjson reads it)": nan.replace(b"12345.5", b"nan"),
        "too large": json.dumps({**good, "pad": "x" * 20_000}).encode(),
    }


def test_a_guarded_channel_dead_letters_every_hostile_item_into_its_own_broker(broker_url):
    """A modq worker's task channel (``guard_poison``): items nested deeper than Python's
    decoder goes, items Redis's cjson reads and Python refuses, an item over the size limit
    (never decoded), are each dead-lettered into the Redis they came from (this test's
    database, not ``MODQ_REDIS_URL``) and leave ``unacked``; the good message after them is
    delivered."""
    raw = Redis.from_url(broker_url)
    get_dead_letters().purge()
    store = get_dead_letters(broker_url)
    received: list[object] = []
    with connect(broker_url) as connection:
        publish(connection, {"job": "good"})
        good = json.loads(raw.lpop("transport-test"))
        items = hostile_items(good)
        raw.rpush("transport-test", *items.values())  # the tail is popped first: reversed
        raw.lpush("transport-test", json.dumps(good))
        channel = connection.channel()
        channel.guard_poison(max_message_bytes=16_384)
        with Consumer(
            channel,
            queues=[QUEUE],
            callbacks=[lambda body, message: (received.append(body), message.ack())],
        ):
            while not received:
                connection.drain_events(timeout=10)
    assert received == [{"job": "good"}]
    entries = list(store.entries())
    assert sorted(e.reason for e in entries) == ["too_large", *["undecodable"] * 5]
    assert {e.raw() for e in entries if e.reason == "undecodable"} == {
        raw_item for name, raw_item in items.items() if name != "too large"
    }
    (large,) = (e for e in entries if e.reason == "too_large")
    assert large.truncated and large.message_bytes == len(items["too large"])
    assert items["too large"].startswith(large.raw())
    assert raw.hlen("unacked") == 0 and raw.zcard("unacked_index") == 0
    assert get_dead_letters().size() == 0  # not in MODQ_REDIS_URL's database
    store.purge()


def test_every_unacked_entry_is_restored_whatever_its_bytes(broker_url):
    """The sweep used to decode each entry with Python's JSON: an entry written for an item
    Redis's cjson read and Python refuses raised out of ``restore_visible`` ("Error in timer";
    a worker started past the visibility timeout exited 1) and stopped the sweep there, so the
    older jobs of a dead worker were never restored. Now each entry's bytes go back to their
    queue, kombu's own entries and modq's alike; an entry that names no queue is parked."""
    raw = Redis.from_url(broker_url)
    with connect(broker_url, visibility_timeout=1) as connection:
        publish(connection, {"job": "older"})
        good = raw.lpop("transport-test")
        control = json.loads(good)
        control["headers"] = {"note": "CONTROL"}
        lua_only = json.dumps(control).encode().replace(b"CONTROL", b"a\x10b")
        deep = b"[" * 5_000 + b"]" * 5_000
        old = time.time() - 100
        entries = {  # tag -> (entry, indexed at)
            "older-job": (b"[" + good + b', "transport-test", "transport-test"]', old - 10),
            "lua-only": (b"[" + lua_only + b',"transport-test","transport-test"]', old),
            "modq-1": (b"\0modq1 14 transport-test" + deep, old),
            "garbage": (b"\x00\xff no entry at all", old),
        }
        for tag, (entry, at) in entries.items():
            raw.hset("unacked", tag, entry)
            raw.zadd("unacked_index", {tag: at})
        connection.channel().qos.restore_visible(start=0, num=10, interval=1)
    assert raw.hlen("unacked") == 0 and raw.zcard("unacked_index") == 0
    restored = raw.lrange("transport-test", 0, -1)
    assert lua_only in restored and deep in restored and len(restored) == 3
    (older,) = (json.loads(item) for item in restored if item not in (lua_only, deep))
    assert older["body"] == json.loads(good)["body"] and older["headers"]["redelivered"]
    (parked,) = raw.lrange(PARKED_KEY, 0, -1)
    assert split_parked(parked) == ("no_queue", b"\x00\xff no entry at all")


def _queue(name: str) -> Queue:
    return Queue(name, Exchange(name, type="direct"), routing_key=name)


def _send(connection: Connection, queue: str, body: dict[str, object], **options: Any) -> None:
    options.setdefault("serializer", "json")
    Producer(connection.channel()).publish(
        body, exchange=queue, routing_key=queue, declare=[_queue(queue)], **options
    )


def _drain(connection: Connection, channel: object, queues: list[str], count: int) -> list:
    received: list[dict[str, object]] = []

    def on_message(body, message):
        received.append(body)
        message.ack()

    with Consumer(channel, queues=[_queue(q) for q in queues], callbacks=[on_message]):
        while len(received) < count:
            connection.drain_events(timeout=10)
    return received


def test_urgent_at_the_lowest_message_priority_comes_before_bulk_at_the_highest(broker_url):
    """The fetch is queue-major: every priority step of urgent before any of bulk (stock
    kombu's step-major order put an urgent priority-9 message behind bulk's step 0)."""
    with connect(broker_url) as connection:
        _send(connection, "bulk", {"job": "bulk"}, priority=0)
        _send(connection, "urgent", {"job": "urgent"}, priority=9)
        got = _drain(connection, connection.channel(), ["urgent", "bulk"], 2)
    assert got == [{"job": "urgent"}, {"job": "bulk"}]


def test_a_re_added_queue_keeps_its_place_in_the_drain_order(broker_url):
    """cancel_consumer + add_consumer append urgent to the channel's queues: still first."""
    with connect(broker_url) as connection:
        channel = connection.channel()
        consumer = Consumer(channel, queues=[_queue("urgent"), _queue("bulk")])
        consumer.consume()
        consumer.cancel_by_queue("urgent")
        consumer.add_queue(_queue("urgent"))
        consumer.consume()
        assert channel.active_queues == ["bulk", "urgent"]  # the order Celery leaves
        assert channel._queue_cycle.consume(2) == ["urgent", "bulk"]  # the order we drain
        consumer.cancel()
        _send(connection, "bulk", {"job": "bulk"})
        _send(connection, "urgent", {"job": "urgent"})
        got = _drain(connection, channel, ["bulk", "urgent"], 2)
    assert got == [{"job": "urgent"}, {"job": "bulk"}]


def test_a_message_that_rang_no_bell_reaches_an_idle_consumer_within_the_doorbell_timeout(
    broker_url,
):
    """A stock kombu producer (no doorbell): the blocked consumer finds it at its next look,
    not at the 60 s BRPOP timeout."""
    got: list[float] = []
    with connect(broker_url) as consumer_side, Connection(broker_url) as stock:
        channel = consumer_side.channel()
        channel.brpop_timeout = 60
        with Consumer(
            channel, queues=[QUEUE], callbacks=[lambda b, m: got.append(time.monotonic())]
        ):
            with pytest.raises(TimeoutError):
                consumer_side.drain_events(timeout=0.2)  # idle: blocked on the doorbell
            sent_s = time.monotonic()
            publish(stock, {"job": "stock"})
            consumer_side.drain_events(timeout=10)
    assert got and got[0] - sent_s < 5
    assert Redis.from_url(broker_url).llen(doorbell_key("transport-test")) == 0


def test_no_ack_consumers_leave_nothing_in_unacked_and_control_replies_ring_no_bell(
    broker_url,
):
    raw = Redis.from_url(broker_url)
    reply_queue = "abc123.reply.celery.pidbox"
    received: list[dict[str, object]] = []
    with connect(broker_url) as connection:
        _send(connection, reply_queue, {"reply": 1})
        assert raw.keys(DOORBELL_PREFIX + "*") == []
        with Consumer(
            connection.channel(),
            queues=[_queue(reply_queue)],
            no_ack=True,
            callbacks=[lambda b, m: received.append(b)],
        ):
            connection.drain_events(timeout=10)
            late = threading.Timer(0.3, _send, (connection, reply_queue, {"reply": 2}))
            late.start()  # the consumer blocks on the reply list itself
            connection.drain_events(timeout=10)
            late.join()
    assert received == [{"reply": 1}, {"reply": 2}]
    assert raw.hlen("unacked") == 0 and raw.zcard("unacked_index") == 0


def test_the_fetch_script_is_loaded_again_after_the_server_forgets_it(broker_url):
    raw = Redis.from_url(broker_url)
    with connect(broker_url) as connection:
        channel = connection.channel()
        publish(connection, {"job": 1})
        assert _drain(connection, channel, ["transport-test"], 1) == [{"job": 1}]
        raw.script_flush()
        publish(connection, {"job": 2})
        assert _drain(connection, channel, ["transport-test"], 1) == [{"job": 2}]


def test_in_an_event_loop_the_idle_look_wakes_the_consumer_for_an_un_belled_message(
    broker_url,
):
    """A worker's event loop (kombu's hub): the consumer blocks on its doorbells for up to
    60 s, yet a stock producer's message (no bell) arrives within the look interval, because
    the look rings the bell of the queue that holds it."""
    from kombu.asynchronous import Hub

    got: list[float] = []
    hub = Hub()
    with connect(broker_url) as consumer_side, Connection(broker_url) as stock:
        channel = consumer_side.default_channel
        channel.brpop_timeout = 60
        consumer = Consumer(
            channel, queues=[QUEUE], callbacks=[lambda b, m: got.append(time.monotonic())]
        )
        consumer.consume()
        consumer_side.register_with_event_loop(hub)
        loop = hub.create_loop()

        def spin(seconds: float) -> None:
            deadline = time.monotonic() + seconds
            while not got and time.monotonic() < deadline:
                next(loop)

        publish(stock, {"declare": True})  # declares the queue; found by the first fetch
        spin(5)
        got.clear()
        spin(0.3)  # idle: blocked on the doorbell
        sent_s = time.monotonic()
        publish(stock, {"job": "stock"})
        spin(10)
        consumer.cancel()
        hub.close()
    assert got and got[0] - sent_s < 5, "found by the 60 s BRPOP timeout, not the look"


def test_a_queue_added_while_the_consumer_is_blocked_is_served_within_the_look_interval(
    broker_url,
):
    """add_consumer (Celery's control command, Flower's button) on an idle worker: the BRPOP in
    flight waits on the old queues' bells only, for up to 60 s; the next look wakes it, so a
    message on the added queue arrives at once."""
    from kombu.asynchronous import Hub

    added = _queue("transport-added")
    got: list[float] = []
    hub = Hub()
    with connect(broker_url) as consumer_side:
        channel = consumer_side.default_channel
        channel.brpop_timeout = 60
        on_message = [lambda b, m: (got.append(time.monotonic()), m.ack())]
        first = Consumer(channel, queues=[QUEUE], callbacks=on_message)
        first.consume()
        consumer_side.register_with_event_loop(hub)
        loop = hub.create_loop()

        def spin(seconds: float) -> None:
            deadline = time.monotonic() + seconds
            while not got and time.monotonic() < deadline:
                next(loop)

        spin(0.3)  # idle: blocked on the first queue's bell
        second = Consumer(channel, queues=[added], callbacks=on_message)
        second.consume()
        sent_s = time.monotonic()
        _send(consumer_side, "transport-added", {"job": "added"})
        spin(10)
        first.cancel()
        second.cancel()
        hub.close()
    assert got and got[0] - sent_s < 5, "found by the 60 s BRPOP timeout, not the look"


def test_a_channel_closed_after_its_transport_lost_the_client_raises_a_connection_error(
    broker_url,
):
    """Celery's consumer, on a lost broker, collects the connection and then closes it,
    ignoring connection errors only. When the channel's first close failed on the dead server,
    the collect still drops the transport's client, and the second close, restoring the
    unacked message, built a pool from that missing client: ``AttributeError: 'NoneType' object
    has no attribute 'hostname'`` ended a worker with ``Unrecoverable error`` during a Redis
    restart (seen in CI). It is a connection error now; the message stays in ``unacked`` on
    the server, for the visibility-timeout sweep."""
    from kombu.common import ignore_errors

    connection = connect(broker_url)
    channel = connection.channel()
    held: list[object] = []
    Consumer(channel, queues=[QUEUE], callbacks=[lambda b, m: held.append(m)]).consume()
    publish(connection, {"job": 1})
    connection.drain_events(timeout=5)  # delivered, never acked
    assert held
    channel._disconnect_pools()  # what the failed first close did, then the collect:
    channel.connection.client = None  # kombu's Connection._do_close_transport
    ignore_errors(connection, channel.close)  # raised AttributeError before
    assert channel.closed
    assert Redis.from_url(broker_url).hlen("unacked") == 1


def test_a_control_reply_its_caller_cannot_decode_is_raised_as_kombu_raises_it(broker_url):
    """Another app that uses pickle, on the same broker, answers a broadcast in pickle. Its
    reply is not modq's: as stock kombu, the caller's ``drain_events`` raises
    ``ContentDisallowed``; it used to be dead-lettered as ``bad_envelope``."""
    from kombu.exceptions import ContentDisallowed

    reply_queue = "0f1e2d.reply.celery.pidbox"
    get_dead_letters().purge()
    with connect(broker_url) as connection:
        _send(connection, reply_queue, {"pong": "from a pickle app"}, serializer="pickle")
        consumer = Consumer(
            connection.channel(),
            queues=[_queue(reply_queue)],
            no_ack=True,
            accept=["json"],
            callbacks=[lambda b, m: None],
        )
        with consumer, pytest.raises(ContentDisallowed):
            connection.drain_events(timeout=10)
    assert get_dead_letters().size() == get_dead_letters(broker_url).size() == 0
