"""The Redis broker's atomic fetch (modq/broker/transport.py), on the session's own redis-server.

Each test uses its own Redis database number on that server and empties it after.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from kombu import Connection, Consumer, Exchange, Producer, Queue
from redis import Redis

from modq.broker.dead_letters import get_dead_letters
from modq.broker.transport import DOORBELL_PREFIX, PARKED_KEY, Transport, doorbell_key
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


def test_an_item_that_is_no_kombu_message_is_dead_lettered_and_the_next_one_delivered(
    broker_url,
):
    raw = Redis.from_url(broker_url)
    store = get_dead_letters()
    store.purge()
    received: list[dict[str, object]] = []
    with connect(broker_url) as connection:
        publish(connection, {"job": 3})
        raw.rpush("transport-test", b"\xffnot json")  # the tail: popped first
        with Consumer(
            connection.channel(), queues=[QUEUE], callbacks=[lambda b, m: received.append(b)]
        ):
            while not received:
                connection.drain_events(timeout=10)
    assert received == [{"job": 3}]
    assert raw.llen(PARKED_KEY) == 0  # parked only until it is in the dead-letter queue
    (entry,) = store.entries()
    assert entry.reason == "undecodable" and entry.raw() == b"\xffnot json"
    store.purge()


def _queue(name: str) -> Queue:
    return Queue(name, Exchange(name, type="direct"), routing_key=name)


def _send(connection: Connection, queue: str, body: dict[str, object], **options: object) -> None:
    Producer(connection.channel()).publish(
        body,
        exchange=queue,
        routing_key=queue,
        declare=[_queue(queue)],
        serializer="json",
        **options,
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
