"""`modq dlq list|show|retry|purge` against the session's own Redis (no worker needed: retry
goes through the producer, which enqueues or refuses)."""

from __future__ import annotations

import base64
import json

import pytest
from redis import Redis

from bench.faults.poison import MARKER, poison_shapes
from modq.broker.dead_letters import DeadLetter, get_dead_letters, poison_entry
from tasks import moderate
from tests.cli.runner import modq
from tests.workers import flush_private_redis


@pytest.fixture
def redis(redis_url):
    flush_private_redis()
    yield Redis.from_url(redis_url)
    flush_private_redis()


@pytest.fixture
def template(redis):
    moderate.apply_async(kwargs={"content_id": "t", "content": MARKER}, queue="normal")
    message = json.loads(redis.rpop("normal"))
    redis.delete("_modq.doorbell.normal")
    return message


def park(template, shape: str, **changes: object) -> DeadLetter:
    _, raw = poison_shapes(template)[shape]
    entry = poison_entry(raw, queue="normal", reason="test", error="ValueError: test")
    for name, value in changes.items():
        setattr(entry, name, value)
    get_dead_letters().park(entry)
    return entry


def with_body(template, kwargs: dict[str, object]) -> bytes:
    message = json.loads(json.dumps(template))
    body = [[], kwargs, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
    message["body"] = base64.b64encode(json.dumps(body).encode()).decode()
    message["headers"]["id"] = message["properties"]["correlation_id"] = "resent-1"
    return json.dumps(message).encode()


def test_list_and_show_never_print_content_unless_asked(template):
    entry = park(template, "body of the wrong shape")
    status, listed = modq("dlq", "list")
    assert status == 0 and "1 dead letter(s)" in listed and entry.id in listed
    status, as_json = modq("dlq", "list", "--json")
    assert status == 0 and json.loads(as_json)["reason"] == "test"
    status, shown = modq("dlq", "show", entry.id)
    assert status == 0 and json.loads(shown)["error"] == "ValueError: test"
    assert MARKER not in listed + as_json + shown
    status, with_content = modq("dlq", "show", entry.id, "--content")
    assert status == 0 and MARKER in with_content
    status, missing = modq("dlq", "show", "no-such-id")
    assert status == 1 and "no dead letter" in missing


def test_retry_sends_a_readable_message_through_the_producer_routed_by_priority(template, redis):
    kwargs = {"content_id": "again-1", "content": "fine now", "priority": "urgent"}
    entry = poison_entry(with_body(template, kwargs), queue="normal", reason="t", error="e")
    get_dead_letters().park(entry)
    status, output = modq("dlq", "retry", entry.id)
    assert status == 0, output
    assert "1 sent again, 0 still parked" in output
    assert get_dead_letters().size() == 0
    (raw,) = redis.lrange("urgent", 0, -1)  # the producer routed it by its priority
    assert json.loads(raw)["headers"]["id"] == "resent-1"


def test_a_message_that_still_does_not_decode_or_validate_stays_parked_with_the_reason(
    template, redis
):
    undecodable = park(template, "body not JSON")
    invalid = poison_entry(
        with_body(template, {"content_id": "x", "content": ""}), queue="n", reason="t", error="e"
    )
    get_dead_letters().park(invalid)
    status, output = modq("dlq", "retry", "--all")
    assert status == 1
    assert "0 sent again, 2 still parked" in output
    store = get_dead_letters()
    assert store.get(undecodable.id).retry_error.startswith("poison_message: still cannot be read")
    assert store.get(invalid.id).retry_error.startswith("invalid_content:")
    assert redis.llen("normal") == 0 and redis.llen("urgent") == 0  # nothing was sent


def test_purge_one_or_all_and_nothing_without_saying_which(template):
    first = park(template, "bad datetime")
    park(template, "headers a list")
    status, output = modq("dlq", "purge")
    assert status == 2 and "give one ID or --all" in output
    assert modq("dlq", "purge", first.id) == (0, f"purged {first.id}\n")
    assert get_dead_letters().size() == 1
    assert modq("dlq", "purge", "--all") == (0, "purged 1 dead letter(s)\n")
    assert get_dead_letters().size() == 0
