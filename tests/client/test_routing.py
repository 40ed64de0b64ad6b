"""Where each way of sending a modq job puts it: the queue named by its priority, whoever
sends it (modq's client, the worker's app, a stock ``send_task``, ``celery call``, canvas).
No worker runs here: the jobs stay on the private broker, where the test reads them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from celery import Celery, chunks, group
from redis import Redis

from modq import moderate, moderate_many, record_review
from modq.broker.queues import BrokerQueues
from modq.errors import InvalidContent, InvalidReview
from tests.conftest import REPO
from tests.workers import flush_private_redis

QUEUES = ("urgent", "normal", "bulk")


@pytest.fixture
def broker() -> Iterator[BrokerQueues]:
    """The private broker, empty before and after."""
    flush_private_redis()
    yield BrokerQueues(os.environ["MODQ_REDIS_URL"], {})
    flush_private_redis()


def depths(broker: BrokerQueues) -> dict[str, int]:
    return broker.depths(QUEUES)


def waiting(broker: BrokerQueues, queue: str) -> list[dict]:
    """The messages waiting on ``queue`` (every priority list), decoded headers and kwargs."""
    messages = []
    for key in broker.keys(queue):
        for raw in Redis.from_url(broker.redis_url).lrange(key, 0, -1):
            message = json.loads(raw)
            body = message["body"]
            if message["properties"].get("body_encoding") == "base64":
                import base64

                body = base64.b64decode(body)
            _, kwargs, embed = json.loads(body)
            messages.append({"headers": message["headers"], "kwargs": kwargs, "embed": embed})
    return messages


def test_the_client_is_its_own_app_and_reads_modq_settings_only():
    import modq.client

    assert moderate.app is modq.client.app and moderate.name == "modq.moderate"
    assert moderate.app.conf.broker_url == os.environ["MODQ_REDIS_URL"]
    heavy = {"torch", "onnxruntime", "sqlalchemy", "mlflow", "tasks", "gpu_worker", "db"}
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, modq; from modq import moderate, moderate_many, record_review; "
            f"print(sorted(set(sys.modules) & set({sorted(heavy)!r})))",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert probe.stdout.strip() == "[]", probe.stdout


@pytest.mark.parametrize("priority", QUEUES)
def test_the_client_puts_a_job_on_its_priority_queue(broker, priority):
    moderate.delay(content_id="c1", content="hello", priority=priority)
    assert depths(broker) == {q: int(q == priority) for q in QUEUES}


def test_a_stock_send_task_is_routed_by_the_priority_argument(broker):
    """Celery's own router (task_routes) routes by the argument, for any app that uses modq's
    Celery settings, e.g. Flower's task form or `celery -A tasks call`."""
    from tasks import app

    app.send_task("modq.moderate", kwargs={"content_id": "a", "content": "x", "priority": "urgent"})
    app.send_task("modq.moderate", args=["b", "x", "text", None, None, "bulk"])
    app.send_task("modq.moderate_many", kwargs={"items": [{"content_id": "c", "content": "x"}]})
    app.send_task("modq.record_review", kwargs={"content_id": "a", "label": "safe"})
    assert depths(broker) == {"urgent": 1, "normal": 1, "bulk": 2}


def test_celery_call_without_queue_lands_on_the_priority_queue(broker):
    kwargs = {"content_id": "call-1", "content": "hello", "priority": "urgent"}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "tasks",
            "call",
            "modq.moderate",
            "--kwargs",
            json.dumps(kwargs),
        ],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert depths(broker) == {"urgent": 1, "normal": 0, "bulk": 0}


def test_a_priority_option_names_the_queue_or_orders_within_it(broker):
    moderate.apply_async(kwargs={"content_id": "u", "content": "x"}, priority="urgent")
    moderate.apply_async(kwargs={"content_id": "n", "content": "x"}, priority=9)
    assert depths(broker) == {"urgent": 1, "normal": 1, "bulk": 0}
    assert waiting(broker, "urgent")[0]["kwargs"]["priority"] == "urgent"
    for bad in (42, -1, True, "high", 2.5):
        with pytest.raises(InvalidContent, match="priority"):
            moderate.apply_async(kwargs={"content_id": "b", "content": "x"}, priority=bad)
    with pytest.raises(InvalidContent, match="contradicts"):
        moderate.apply_async(
            kwargs={"content_id": "b", "content": "x", "priority": "bulk"}, priority="urgent"
        )
    with pytest.raises(InvalidContent, match="does not match"):
        moderate.apply_async(kwargs={"content_id": "b", "content": "x"}, queue="bulk")
    assert depths(broker) == {"urgent": 1, "normal": 1, "bulk": 0}


def test_a_group_with_one_bad_job_sends_nothing(broker):
    with pytest.raises(InvalidContent, match="content is empty"):
        group(
            moderate.s(content_id="g1", content="fine", priority="urgent"),
            moderate.s(content_id="g2", content="", priority="urgent"),
        )
    with pytest.raises(InvalidReview):
        group(record_review.s("g1", label="violation"), record_review.s("g1", label="maybe"))
    assert depths(broker) == {"urgent": 0, "normal": 0, "bulk": 0}


def test_a_group_keeps_each_job_on_its_priority_queue(broker):
    group(
        moderate.s(content_id="g1", content="a", priority="urgent"),
        moderate.s("g2", "b", "text", None, None, "bulk"),
        moderate_many.s(items=[{"content_id": "g3", "content": "c"}], priority="normal"),
    ).apply_async()
    assert depths(broker) == {"urgent": 1, "normal": 1, "bulk": 1}


def test_chunks_check_every_call_and_keep_their_priority_queue(broker):
    calls = [(f"k{i}", f"text {i}", "text", None, None, "urgent") for i in range(6)]
    moderate.chunks(calls, 2).apply_async()
    assert depths(broker) == {"urgent": 3, "normal": 0, "bulk": 0}
    with pytest.raises(InvalidContent, match="content is empty"):
        moderate.chunks([*calls, ("bad", "", "text", None, None, "urgent")], 2)
    with pytest.raises(InvalidContent, match="share a priority"):
        moderate.chunks([calls[0], ("n", "x", "text", None, None, "normal")], 2)
    # a stock chunks() built from a partial signature is routed all the same
    chunks(moderate.s(), [("s1", "x", "text", None, None, "bulk")], 1).apply_async()
    assert depths(broker) == {"urgent": 3, "normal": 0, "bulk": 1}


def test_events_show_ids_not_texts_or_users(broker):
    moderate.delay(content_id="r1", content="secret words", user_id="user-42")
    moderate_many.delay(items=[{"content_id": "r2", "content": "more secret", "user_id": "u9"}])
    shown = " ".join(
        f"{m['headers']['argsrepr']} {m['headers']['kwargsrepr']}"
        for queue in QUEUES
        for m in waiting(broker, queue)
    )
    assert "r1" in shown and "r2" in shown and "12 chars" in shown
    assert "secret" not in shown and "user-42" not in shown and "u9" not in shown


def test_callbacks_to_the_apps_own_queue_are_routed_by_the_apps_router(broker):
    shop = Celery("shop", broker=os.environ["MODQ_REDIS_URL"], set_as_current=False)
    shop.conf.task_default_queue = "shop"
    shop.conf.task_routes = {"shop.audit": {"queue": "shop-audit"}}

    @shop.task(name="shop.on_result", shared=False)
    def on_result(result: dict) -> None: ...

    @shop.task(name="shop.audit", shared=False)
    def audit(result: dict) -> None: ...

    moderate.apply_async(
        kwargs={"content_id": "l1", "content": "x"}, link=[on_result.s(), audit.s()]
    )
    (message,) = waiting(broker, "normal")
    queues = [callback["options"]["queue"] for callback in message["embed"]["callbacks"]]
    assert queues == ["shop", "shop-audit"]


def test_configure_points_the_client_at_another_broker_and_result_store(broker):
    other = os.environ["MODQ_REDIS_URL"].rsplit("/", 1)[0] + "/3"
    script = (
        "from modq import configure, moderate\n"
        f"app = configure(broker_url={other!r})\n"
        "moderate.delay(content_id='c', content='x', priority='urgent')\n"
        "print(app.conf.broker_url, app.conf.result_backend)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODQ_")}
    run = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
        env={**env, "PYTHONPATH": str(REPO), "MODQ_REDIS_URL": "redis://127.0.0.1:1/0"},
    )
    assert run.stdout.split() == [other, other]
    elsewhere = Redis.from_url(other)
    try:
        assert elsewhere.llen("urgent") == 1 and depths(broker)["urgent"] == 0
    finally:
        elsewhere.flushdb()


def test_starmap_is_routed_by_its_calls_priority(broker):
    """Celery routes a starmap under its inner task's name: the router knows it by shape."""
    moderate.starmap([("s1", "x", "text", None, None, "urgent")]).apply_async()
    assert depths(broker) == {"urgent": 1, "normal": 0, "bulk": 0}


def test_calls_that_cannot_mean_what_they_say_are_refused(broker):
    with pytest.raises(InvalidContent, match=r"map\(\) passes one argument"):
        moderate.map(["a", "b"])
    with pytest.raises(InvalidContent, match="differs from the message's 'bulk'"):
        moderate_many.delay(items=[{"content_id": "i", "content": "x", "priority": "urgent"}])
    with pytest.raises(InvalidContent, match="always goes to 'normal'"):
        record_review.apply_async(kwargs={"content_id": "c", "label": "safe"}, priority="urgent")
    assert depths(broker) == {"urgent": 0, "normal": 0, "bulk": 0}
