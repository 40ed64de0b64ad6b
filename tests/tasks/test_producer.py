"""Producer side, no worker: validation before enqueue, routing by priority, broker down."""

import os
import subprocess
import sys

import pytest
from redis import Redis

from modq.errors import BrokerUnavailable, InvalidContent, UnsupportedContentType
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
