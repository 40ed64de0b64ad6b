"""Backpressure against the real private Redis: bounds per priority, bulk refused first,
nothing enqueued on refusal, items charged, a cheap cached depth, and recovery after a drain."""

import os
import uuid
from types import SimpleNamespace

import pytest
from redis import Redis

from modq.errors import BrokerUnavailable, Overloaded
from modq.settings import get_settings
from tasks import app, moderate, moderate_many
from modq.broker.backpressure import get_admission
from modq.broker.queues import BrokerQueues
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
    configure(max_queue_depth_bulk=5, max_queue_depth_normal=5, queue_depth_cache_ms=0)
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
    configure(max_queue_depth_bulk=10, queue_depth_cache_ms=0)
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
    configure(max_queue_depth_bulk=0, queue_depth_cache_ms=0)
    for _ in range(30):
        moderate.delay(**_job("bulk"))
    assert queues.depths(["bulk"]) == {"bulk": 30}


def test_a_hot_producer_reads_the_depth_once_per_cache_period(configure, queues):
    configure(max_queue_depth_normal=50, queue_depth_cache_ms=600_000)
    client = Redis.from_url(os.environ["MODQ_REDIS_URL"])

    def llen_calls() -> int:
        return int(client.info("commandstats").get("cmdstat_llen", {}).get("calls", 0))

    before = llen_calls()
    for _ in range(50):
        moderate.delay(**_job("normal"))
    # the cached depth counts this producer's own messages: the 51st is refused unread
    with pytest.raises(Overloaded):
        moderate.delay(**_job("normal"))
    assert llen_calls() - before == len(queues.keys("normal"))  # one pipelined reading
    assert queues.depths(["normal"]) == {"normal": 50}


def test_a_retry_is_never_refused(configure, queues):
    configure(max_queue_depth_bulk=1, queue_depth_cache_ms=0)
    moderate.delay(**_job("bulk"))
    with pytest.raises(Overloaded):
        moderate.delay(**_job("bulk"))
    moderate.apply_async(kwargs=_job("bulk"), retries=1)  # what Task.retry sends
    assert queues.depths(["bulk"]) == {"bulk": 2}


def test_refusals_are_counted_in_redis(configure):
    configure(max_queue_depth_bulk=1, queue_depth_cache_ms=0)
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
    with pytest.raises(BrokerUnavailable, match="Redis broker only"):
        BrokerQueues.from_app(rabbit)
    get_settings.cache_clear()
    try:
        assert get_admission(rabbit) is None
    finally:
        get_settings.cache_clear()


@pytest.mark.integration
@pytest.mark.slow
def test_bulk_is_accepted_again_once_a_worker_drains(configure, queues, database, tmp_path):
    configure(max_queue_depth_bulk=3, queue_depth_cache_ms=0)
    waiting = [moderate.delay(**_job("bulk")) for _ in range(3)]
    with pytest.raises(Overloaded):
        moderate.delay(**_job("bulk"))
    with running_worker({"MODQ_DATABASE_URL": database}, log_dir=tmp_path, threads=4):
        results = [r.get(timeout=120) for r in waiting]
        assert queues.depths(["bulk"]) == {"bulk": 0}
        again = moderate.delay(**_job("bulk")).get(timeout=120)
    assert [r["decision"] for r in results] and again["priority"] == "bulk"
