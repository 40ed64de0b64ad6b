"""Backpressure against the real private Redis: bounds per priority in items, bulk refused
first, nothing enqueued on refusal, items charged and read in the same unit, and the places
given back as a worker receives the work."""

import json
import os
import uuid
from types import SimpleNamespace

import pytest
from redis import Redis

from modq.broker import backpressure
from modq.broker.backpressure import get_admission, release_delivery
from modq.broker.queues import BrokerQueues
from modq.errors import BrokerUnavailable, Overloaded
from modq.settings import get_settings
from tasks import app, moderate, moderate_many
from tests.workers import flush_private_redis, running_worker

QUEUES = ("urgent", "normal", "bulk")


@pytest.fixture
def configure(monkeypatch):
    """Set MODQ_* variables for this test's producer (settings are re-read), on an empty broker."""

    def apply(**values: object) -> None:
        for name, value in values.items():
            monkeypatch.setenv(f"MODQ_{name.upper()}", str(value))
        get_settings.cache_clear()

    flush_private_redis()
    yield apply
    monkeypatch.undo()
    get_settings.cache_clear()
    flush_private_redis()


@pytest.fixture
def queues():
    return BrokerQueues.from_app(app)


def _job(priority: str) -> dict[str, str]:
    return {"content_id": f"c-{uuid.uuid4().hex[:8]}", "content": "hello", "priority": priority}


def test_the_job_past_the_bulk_bound_is_refused_and_urgent_still_goes(configure, queues):
    configure(max_queue_depth_bulk=5, max_queue_depth_normal=5)
    for _ in range(5):
        moderate.delay(**_job("bulk"))
    with pytest.raises(Overloaded) as refused:
        moderate.delay(**_job("bulk"))
    assert refused.value.details == {"queue": "bulk", "depth": 5, "bound": 5, "cost": 1}
    assert "'bulk'" in refused.value.message and "bound is 5" in refused.value.message
    assert queues.depths(QUEUES) == {"urgent": 0, "normal": 0, "bulk": 5}
    moderate.delay(**_job("urgent"))
    moderate.delay(**_job("normal"))
    assert queues.depths(QUEUES) == {"urgent": 1, "normal": 1, "bulk": 5}


def test_moderate_many_is_charged_its_items(configure, queues):
    configure(max_queue_depth_bulk=10)
    for _ in range(7):
        moderate.delay(**_job("bulk"))
    items = [{"content_id": f"i{i}", "content": "x"} for i in range(4)]
    with pytest.raises(Overloaded) as refused:
        moderate_many.delay(items=items)
    assert refused.value.details["cost"] == 4
    assert queues.depths(["bulk"]) == {"bulk": 7}
    moderate_many.delay(items=items[:3])
    assert queues.depths(["bulk"]) == {"bulk": 8}


def test_zero_means_unbounded(configure, queues):
    configure(max_queue_depth_bulk=0)
    for _ in range(30):
        moderate.delay(**_job("bulk"))
    assert queues.depths(["bulk"]) == {"bulk": 30}


def test_depth_is_read_in_items_as_it_is_charged(configure, queues):
    # the issue: 60 messages of 100 items each were admitted under a bound of 500 (depth was
    # read in messages, charged in items)
    configure(max_queue_depth_bulk=500)
    items = [{"content_id": f"i{i}", "content": "x"} for i in range(100)]
    admitted = refused = 0
    for _ in range(60):
        try:
            moderate_many.delay(items=items)
            admitted += 1
        except Overloaded as exc:
            refused += 1
            assert exc.details == {"queue": "bulk", "depth": 500, "bound": 500, "cost": 100}
    assert (admitted, refused) == (5, 55)
    assert queues.depths(["bulk"]) == {"bulk": 5}
    assert get_admission(app).depth("bulk") == 500
    moderate.delay(**_job("urgent"))  # urgent is still admitted while bulk is refused


def test_a_depth_of_single_jobs_refuses_a_batch_that_does_not_fit(configure):
    configure(max_queue_depth_normal=10)
    for _ in range(8):
        moderate.delay(**_job("normal"))
    items = [{"content_id": f"i{i}", "content": "x"} for i in range(3)]
    with pytest.raises(Overloaded) as refused:
        moderate_many.delay(items=items, priority="normal")
    assert refused.value.details["depth"] == 8
    moderate_many.delay(items=items[:2], priority="normal")


def test_an_admission_is_one_atomic_script_call(configure):
    configure(max_queue_depth_normal=50)
    client = Redis.from_url(os.environ["MODQ_REDIS_URL"])

    def calls(command: str) -> int:
        return int(client.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0))

    before = calls("evalsha"), calls("llen")
    for _ in range(5):
        moderate.delay(**_job("normal"))
    # one EVALSHA per admission (the script's LLENs run inside Redis, in the same step)
    assert calls("evalsha") - before[0] == 5
    assert calls("llen") - before[1] == 5 * len(BrokerQueues.from_app(app).keys("normal"))


def test_the_worker_side_release_gives_the_places_back_once(configure):
    configure(max_queue_depth_bulk=10)
    admission = get_admission(app)
    moderate_many.delay(items=[{"content_id": f"i{i}", "content": "x"} for i in range(10)])
    with pytest.raises(Overloaded):
        moderate.delay(**_job("bulk"))
    raw = Redis.from_url(os.environ["MODQ_REDIS_URL"]).rpop("bulk")  # a worker takes it
    headers = json.loads(raw)["headers"]
    assert (headers["modq_charged_queue"], headers["modq_charged_items"]) == ("bulk", 10)
    release_delivery(app, {**headers, "redelivered": True})  # a redelivery releases nothing
    release_delivery(app, {**headers, "retries": 1})  # nor does a retry
    assert admission.depth("bulk") == 10
    release_delivery(app, headers)
    assert admission.depth("bulk") == 0
    release_delivery(app, headers)  # never below zero
    assert admission.depth("bulk") == 0
    moderate.delay(**_job("bulk"))


def test_a_count_left_by_purged_messages_heals_once_the_queue_is_empty(configure, monkeypatch):
    configure(max_queue_depth_bulk=3)
    for _ in range(3):
        moderate.delay(**_job("bulk"))
    Redis.from_url(os.environ["MODQ_REDIS_URL"]).delete("bulk")  # `celery purge`: no release
    with pytest.raises(Overloaded):  # within the grace a producer may still be pushing
        moderate.delay(**_job("bulk"))
    monkeypatch.setattr(backpressure, "RESERVE_GRACE_MS", 0)
    moderate.delay(**_job("bulk"))
    assert get_admission(app).depth("bulk") == 1


def test_a_retry_is_never_refused(configure, queues):
    configure(max_queue_depth_bulk=1)
    moderate.delay(**_job("bulk"))
    with pytest.raises(Overloaded):
        moderate.delay(**_job("bulk"))
    moderate.apply_async(kwargs=_job("bulk"), retries=1)  # what Task.retry sends
    assert queues.depths(["bulk"]) == {"bulk": 2}


def test_refusals_are_counted_in_redis(configure):
    configure(max_queue_depth_bulk=1)
    moderate.delay(**_job("bulk"))
    for _ in range(3):
        with pytest.raises(Overloaded):
            moderate.delay(**_job("bulk"))
    client = Redis.from_url(os.environ["MODQ_REDIS_URL"])
    prefix = get_settings().metrics_key_prefix
    assert int(client.hget(f"{prefix}overloaded", "bulk") or 0) == 3


def test_a_non_redis_broker_is_not_bounded_but_said_so():
    rabbit = SimpleNamespace(
        conf=SimpleNamespace(broker_url="amqp://127.0.0.1:5672//", broker_transport_options={})
    )
    with pytest.raises(BrokerUnavailable, match="producers do not count queued items"):
        BrokerQueues.from_app(rabbit)
    get_settings.cache_clear()
    try:
        assert get_admission(rabbit) is None
    finally:
        get_settings.cache_clear()


@pytest.mark.integration
@pytest.mark.slow
def test_bulk_is_accepted_again_once_a_worker_drains(configure, queues, database, tmp_path):
    configure(max_queue_depth_bulk=3)
    waiting = [moderate.delay(**_job("bulk")) for _ in range(3)]
    with pytest.raises(Overloaded):
        moderate.delay(**_job("bulk"))
    with running_worker({"MODQ_DATABASE_URL": database}, log_dir=tmp_path, threads=4):
        results = [r.get(timeout=120) for r in waiting]
        assert queues.depths(["bulk"]) == {"bulk": 0}
        again = moderate.delay(**_job("bulk")).get(timeout=120)
    assert [r["decision"] for r in results] and again["priority"] == "bulk"
