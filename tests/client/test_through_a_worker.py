"""The client and stock Celery producers against a real worker process: results, typed errors
for jobs that skipped the producer's checks, misrouted jobs forwarded, and canvas callbacks
that reach the app's own queues."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator

import pytest
from celery import Celery, chain, chord
from redis import Redis

from modq import moderate, moderate_many
from modq.errors import InvalidContent, UnsupportedContentType
from tests.polling import wait_until

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def stock() -> Iterator[Celery]:
    """An app that has only celery: the broker URL, JSON, and nothing of modq's."""
    url = os.environ["MODQ_REDIS_URL"]
    app = Celery("stock", broker=url, backend=url, set_as_current=False)
    app.conf.update(task_serializer="json", accept_content=["json"], result_serializer="json")
    yield app
    app.close()


@pytest.fixture
def shop() -> Celery:
    """The app's own Celery, with its own default queue for its callbacks."""
    app = Celery("shop", broker=os.environ["MODQ_REDIS_URL"], set_as_current=False)
    app.conf.task_default_queue = f"shop-{uuid.uuid4().hex[:6]}"
    return app


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _messages_on(queue: str) -> list[dict]:
    """Decoded (task name, args) of what waits on one of the app's queues."""
    import base64

    found = []
    for raw in Redis.from_url(os.environ["MODQ_REDIS_URL"]).lrange(queue, 0, -1):
        message = json.loads(raw)
        body = base64.b64decode(message["body"])
        args, kwargs, _ = json.loads(body)
        found.append({"task": message["headers"]["task"], "args": args, "kwargs": kwargs})
    return found


def test_the_client_gets_a_full_result(worker):
    content_id = _id("client")
    result = moderate.delay(content_id=content_id, content="have a nice day").get(timeout=60)
    assert result["content_id"] == content_id and result["decision"] == "allow"
    assert result["model_version"] and result["policy_version"]
    items = [{"content_id": _id("many"), "content": f"text {i}"} for i in range(3)]
    results = moderate_many.delay(items=items).get(timeout=60)
    assert [r["content_id"] for r in results] == [i["content_id"] for i in items]


def test_a_stock_producer_gets_the_same_service(worker, stock):
    content_id = _id("stock")
    job = stock.send_task(
        "modq.moderate",
        kwargs={"content_id": content_id, "content": "have a nice day", "priority": "urgent"},
        queue="urgent",
    )
    assert job.get(timeout=60)["content_id"] == content_id


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"content": ""}, InvalidContent, "content is empty"),
        ({"content": "x" * 100_000}, InvalidContent, "content"),
        ({"content": "x", "content_type": "image"}, UnsupportedContentType, "not supported"),
        ({"content": "x", "priority": "asap"}, InvalidContent, "priority"),
        ({"content": "x", "context": [1, 2]}, InvalidContent, "context"),
    ],
)
def test_a_job_that_skipped_the_checks_fails_on_the_worker_with_the_same_typed_error(
    worker, stock, kwargs, error, message
):
    job = stock.send_task(
        "modq.moderate", kwargs={"content_id": _id("bad"), **kwargs}, queue="normal"
    )
    with pytest.raises(error, match=message):
        job.get(timeout=60)


def test_a_misrouted_job_is_forwarded_to_its_priority_queue(worker, stock):
    content_id = _id("misrouted")
    job = stock.send_task(
        "modq.moderate",
        kwargs={"content_id": content_id, "content": "hello there", "priority": "urgent"},
        queue="bulk",
    )
    result = job.get(timeout=60)
    assert result["content_id"] == content_id and result["priority"] == "urgent"
    wait_until(
        lambda: "arrived on queue 'bulk', forwarded to 'urgent'" in worker.log.read_text(),
        timeout_s=10,
        message="the forwarding warning in the worker log",
    )
    assert "hello there" not in worker.log.read_text()


def test_chain_and_link_callbacks_reach_the_apps_own_queue(worker, shop):
    @shop.task(name="shop.on_result", shared=False)
    def on_result(result: dict) -> None: ...

    first, second = _id("chain"), _id("link")
    chained = chain(moderate.s(content_id=first, content="lovely weather"), on_result.s())
    head = chained.apply_async()
    linked = moderate.apply_async(
        kwargs={"content_id": second, "content": "lovely weather"}, link=on_result.s()
    )
    assert linked.get(timeout=60)["content_id"] == second
    assert head.parent.get(timeout=60)["content_id"] == first
    assert head.parent.state == "SUCCESS" and linked.state == "SUCCESS"
    queue = shop.conf.task_default_queue
    wait_until(lambda: len(_messages_on(queue)) == 2, timeout_s=30, message="two callbacks")
    delivered = {m["args"][0]["content_id"] for m in _messages_on(queue)}
    assert delivered == {first, second}
    assert {m["task"] for m in _messages_on(queue)} == {"shop.on_result"}


def test_a_chord_callback_reaches_the_apps_own_queue(worker, shop):
    @shop.task(name="shop.on_all", shared=False)
    def on_all(results: list) -> None: ...

    ids = [_id("chord") for _ in range(3)]
    chord(
        [moderate.s(content_id=i, content=f"text {n}") for n, i in enumerate(ids)],
        on_all.s(),
    ).apply_async()
    queue = shop.conf.task_default_queue
    wait_until(lambda: _messages_on(queue), timeout_s=60, message="the chord callback")
    (message,) = _messages_on(queue)
    assert message["task"] == "shop.on_all"
    assert sorted(r["content_id"] for r in message["args"][0]) == sorted(ids)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"content": "x", "foo": 1}, "unexpected keyword argument 'foo'"),
        ({}, "missing a required argument: 'content'"),
        ({"content": "x", "enqueued_at_s": "yesterday"}, "enqueued_at_s is a string"),
    ],
)
def test_a_stock_message_of_the_wrong_shape_fails_with_a_typed_error(
    worker, stock, kwargs, message
):
    job = stock.send_task(
        "modq.moderate", kwargs={"content_id": _id("shape"), **kwargs}, queue="normal"
    )
    with pytest.raises(InvalidContent, match=message):
        job.get(timeout=60)


def test_starmap_keeps_its_priority_queue(worker):
    calls = [(_id("star"), "hello", "text", None, None, "urgent") for _ in range(2)]
    results = moderate.starmap(calls).apply_async().get(timeout=60)
    assert [r["priority"] for r in results] == ["urgent", "urgent"]


def test_a_chord_header_chain_ending_in_an_app_task_calls_back_on_the_apps_queue(worker, shop):
    @shop.task(name="shop.step", shared=False)
    def step(result: dict) -> None: ...

    from celery import current_app

    previous = current_app._get_current_object()
    shop.set_current()  # an app's own Celery is its current app
    try:
        content_id = _id("header")
        signature = chord(
            [chain(moderate.s(content_id=content_id, content="hi"), step.s())], step.s()
        )
        signature.apply_async()
        queue = shop.conf.task_default_queue
        wait_until(lambda: _messages_on(queue), timeout_s=60, message="the header's last step")
        (message,) = _messages_on(queue)
        assert message["task"] == "shop.step"
        assert message["args"][0]["content_id"] == content_id
    finally:
        previous.set_current()
