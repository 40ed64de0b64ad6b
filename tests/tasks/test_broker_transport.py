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

from tasks import app
from modq.broker.transport import PARKED_KEY, Transport, doorbell_key
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
    """With a 60 s BRPOP timeout, only the producer's token can deliver within 10 s."""
    received: list[dict[str, object]] = []
    with connect(broker_url) as consumer_side, connect(broker_url) as producer_side:
        channel = consumer_side.channel()
        channel.brpop_timeout = 60
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


def test_an_item_that_is_no_kombu_message_is_parked_and_the_next_one_delivered(broker_url):
    raw = Redis.from_url(broker_url)
    received: list[dict[str, object]] = []
    with connect(broker_url) as connection:
        publish(connection, {"job": 3})
        raw.rpush("transport-test", b"\xffnot json")  # the tail: popped first
        with Consumer(
            connection.channel(), queues=[QUEUE], callbacks=[lambda b, m: received.append(b)]
        ):
            connection.drain_events(timeout=10)
    assert received == [{"job": 3}]
    assert raw.lrange(PARKED_KEY, 0, -1) == [b"\xffnot json"]
