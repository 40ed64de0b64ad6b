"""Producer side, no worker: validation before enqueue, routing by priority, broker down."""

import base64
import json
import os
import subprocess
import sys

import pytest
from redis import Redis

from modq.errors import BrokerUnavailable, InvalidContent, UnsupportedContentType
from modq.producer.task import message_bytes_estimate
from tasks import moderate, moderate_many
from tests.workers import flush_private_redis

QUEUES = ("urgent", "normal", "bulk")


@pytest.fixture
def broker():
    flush_private_redis()
    client = Redis.from_url(os.environ["MODQ_REDIS_URL"])
    yield client
    flush_private_redis()


def _depths(client):
    return {q: client.llen(q) for q in QUEUES}


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"content_id": "c", "content": ""}, InvalidContent),
        ({"content_id": "c", "content": "x" * 20_001}, InvalidContent),
        ({"content_id": "c", "content": 12}, InvalidContent),
        ({"content_id": "c", "content": "bad \udcff utf8"}, InvalidContent),
        ({"content_id": "c", "content": "hi", "content_type": "image"}, UnsupportedContentType),
        ({"content_id": "c", "content": "hi", "content_type": "hologram"}, InvalidContent),
        ({"content_id": "c", "content": "hi", "priority": "asap"}, InvalidContent),
        ({"content": "no id"}, InvalidContent),
        ({"content_id": "c", "content": "hi", "colour": "red"}, InvalidContent),
    ],
)
def test_bad_jobs_raise_typed_errors_and_enqueue_nothing(broker, kwargs, error):
    with pytest.raises(error):
        moderate.delay(**kwargs)
    assert _depths(broker) == {q: 0 for q in QUEUES}


@pytest.mark.parametrize(
    "items, message",
    [
        ([], "non-empty"),
        ("not a list", "non-empty"),
        ([{"content_id": "a", "content": "fine"}, {"content_id": "b", "content": ""}], "item 1"),
        ([{"content_id": "a", "content": "fine"}, "nope"], "item 1 is not an object"),
        ([{"content_id": f"i{i}", "content": "x"} for i in range(1001)], "limit is 1000"),
    ],
)
def test_bad_bulk_messages_enqueue_nothing(broker, items, message):
    with pytest.raises(InvalidContent, match=message):
        moderate_many.delay(items=items)
    assert _depths(broker) == {q: 0 for q in QUEUES}


@pytest.mark.parametrize("priority", QUEUES)
def test_priority_picks_the_queue(broker, priority):
    moderate.delay(content_id="c1", content="hello there", priority=priority)
    assert _depths(broker) == {q: int(q == priority) for q in QUEUES}


def test_moderate_many_defaults_to_bulk(broker):
    moderate_many.delay(items=[{"content_id": "a", "content": "x"}])
    assert _depths(broker)["bulk"] == 1


def test_a_down_broker_is_a_clear_error_not_a_hang():
    code = (
        "from tasks import moderate\n"
        "from modq.errors import BrokerUnavailable\n"
        "try:\n"
        "    moderate.delay(content_id='c', content='hello')\n"
        "except BrokerUnavailable as exc:\n"
        "    print('BROKER_UNAVAILABLE', exc.code)\n"
    )
    env = {**os.environ, "MODQ_REDIS_URL": "redis://127.0.0.1:1/0"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    # the child printed the exception's class check and its code: both must be BrokerUnavailable's
    assert f"BROKER_UNAVAILABLE {BrokerUnavailable.code}" in done.stdout, done.stderr[-2000:]


def test_a_bulk_message_a_worker_would_refuse_as_too_large_is_refused_before_it_is_sent(broker):
    # every item is valid (20,000 characters each), but 150 of them in non-ASCII text make a
    # broker item of ~24 MB: over MODQ_MAX_MESSAGE_BYTES (16 MiB), which a worker dead-letters
    # undecoded as too_large; the producer refuses it with a typed error instead
    items = [{"content_id": f"i{i}", "content": "é" * 20_000} for i in range(150)]
    with pytest.raises(InvalidContent, match="MODQ_MAX_MESSAGE_BYTES") as refused:
        moderate_many.delay(items=items)
    assert refused.value.details["field"] == "items"
    assert _depths(broker) == {q: 0 for q in QUEUES}


def test_the_producers_size_estimate_is_never_below_the_real_broker_item(broker):
    texts = ["plain ascii " * 300, "é" * 4_000, "emoji 😀 " * 500, 'quotes " and \\ ' * 200]
    items = [{"content_id": f"i{i}", "content": text} for i, text in enumerate(texts)]
    moderate_many.delay(items=items, priority="bulk")
    moderate.delay(content_id="one", content=texts[2], priority="bulk")
    keys = [key for key in broker.keys("bulk*") if broker.type(key) == b"list"]
    stored = [raw for key in keys for raw in broker.lrange(key, 0, -1)]
    assert len(stored) == 2
    for raw in stored:
        envelope = json.loads(raw)
        kwargs = json.loads(base64.b64decode(envelope["body"]))[1]
        assert len(raw) <= message_bytes_estimate(kwargs)
