"""modq on RabbitMQ: a real worker takes jobs from durable quorum queues; depth is read from
the broker and exported with the wait-time histogram; producers are told that item bounds are
not enforced there; a nack is Overloaded."""

from __future__ import annotations

import uuid

import pytest
from prometheus_client import generate_latest

import migrations
from cli.services import free_port
from db.results import ResultRepository
from db.session import make_engine
from modq import moderate, moderate_many
from modq.broker.amqp import AmqpQueues
from modq.broker.backpressure import get_admission
from modq.broker.queues import queue_reader
from modq.errors import Overloaded
from modq.settings import get_settings
from tasks import app
from tasks.queue_metrics import make_registry
from tasks.wait_time import read_waits
from tests.workers import running_worker

pytestmark = [pytest.mark.integration]


def test_a_worker_on_rabbitmq_answers_jobs_from_quorum_queues(
    amqp_url, rabbit_node, tiny_model_dir, tmp_path
):
    url = f"sqlite:///{tmp_path / 'results.db'}"
    migrations.upgrade(url)
    env = {"MODQ_DATABASE_URL": url, "MODQ_MODEL_DIR": str(tiny_model_dir)}
    tag = uuid.uuid4().hex[:6]
    with running_worker(env, log_dir=tmp_path, threads=2) as worker:
        one = moderate.delay(content_id=f"{tag}-1", content="hello", priority="urgent")
        many = moderate_many.delay(
            items=[{"content_id": f"{tag}-m{i}", "content": f"text {i}"} for i in range(5)],
            priority="bulk",
        )
        assert one.get(timeout=60)["content_id"] == f"{tag}-1"
        assert len(many.get(timeout=60)) == 5
        assert worker.stats()["model_loaded"]
    waits = read_waits(queue_reader(app), get_settings().metrics_key_prefix, ["urgent", "bulk"])
    assert waits["urgent"][0][-1][1] == 1 and waits["bulk"][0][-1][1] == 1  # +Inf bucket
    engine = make_engine(url)
    assert ResultRepository(engine).count(tag) == 6
    engine.dispose()
    vhost = amqp_url.rsplit("/", 1)[1]
    rows = rabbit_node.ctl(
        "list_queues", "-p", vhost, "name", "type", "durable", "--no-table-headers", "-q"
    )
    kinds = {line.split()[0]: line.split()[1:] for line in rows.splitlines() if line.strip()}
    for name in ("urgent", "normal", "bulk"):
        assert kinds[name] == ["quorum", "true"], rows


def test_depth_is_read_from_rabbitmq_and_item_bounds_are_off(amqp_url):
    queues = AmqpQueues.from_app(app)
    for i in range(3):
        moderate.delay(content_id=f"d-{i}", content="waiting", priority="normal")
    assert queues.depths(["urgent", "normal", "bulk"]) == {"urgent": 0, "normal": 3, "bulk": 0}
    assert queues.oldest_enqueued_at_s(["normal"]) == {"normal": None}
    assert get_admission(app) is None  # RabbitMQ bounds queues by policy (docs/rabbitmq.md)
    scrape = generate_latest(make_registry(queue_reader(app), get_settings())).decode()
    assert 'modq_queue_depth{queue="normal"} 3.0' in scrape
    assert "modq_broker_up 1.0" in scrape


def test_a_scrape_of_an_unreachable_rabbitmq_says_broker_down(amqp_url):
    gone = AmqpQueues(f"amqp://guest:guest@127.0.0.1:{free_port()}//", get_settings().redis_url)
    scrape = generate_latest(make_registry(gone, get_settings())).decode()
    assert "modq_broker_up 0.0" in scrape


def test_a_queue_full_under_a_reject_publish_policy_is_overloaded(amqp_url, rabbit_node):
    """RabbitMQ's own bound: a max-length policy with overflow reject-publish nacks the
    publish, and the producer gets the typed Overloaded (nothing enqueued)."""
    vhost = amqp_url.rsplit("/", 1)[1]
    moderate.delay(content_id="declare", content="x", priority="bulk")  # declares the queues
    rabbit_node.ctl(
        "set_policy", "-p", vhost, "--apply-to", "queues", "modq-bound", "^bulk$",
        '{"max-length": 2, "overflow": "reject-publish"}',
    )  # fmt: skip
    sent = 1
    with pytest.raises(Overloaded) as refused:
        for i in range(20):  # the policy reaches the queue within a moment
            moderate.delay(content_id=f"full-{i}", content="x", priority="bulk")
            sent += 1
    assert refused.value.details["queue"] == "bulk"
    # a quorum queue checks its length before it appends: one message over the policy's 2
    assert 2 <= AmqpQueues.from_app(app).depths(["bulk"])["bulk"] <= 3 <= sent
