"""The Celery keys modq uses on RabbitMQ (no broker needed): quorum queues behind topic
exchanges, persistent messages, publisher confirms, results kept in Redis; the client's
``configure(broker_url=amqp://…)`` gets the same keys as the environment would."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.faults.rabbitmq_restart import PUBLISH_RETRY_S
from modq.broker.amqp import AMQP_TRANSPORT, is_amqp
from modq.broker.config import shared_celery_config, transport_for
from modq.settings import Settings

AMQP_URL = "amqp://guest:guest@127.0.0.1:5673/modq"


def test_the_keys_of_a_rabbitmq_broker():
    settings = Settings(broker_url=AMQP_URL, redis_url="redis://127.0.0.1:6390/0")
    config = shared_celery_config(settings)
    assert config["broker_url"] == AMQP_URL
    assert config["result_backend"] == "redis://127.0.0.1:6390/0"  # results stay in Redis
    assert config["broker_transport"] == AMQP_TRANSPORT
    assert config["broker_transport_options"]["confirm_publish"] is True
    assert config["task_default_delivery_mode"] == "persistent"
    queues = {queue.name: queue for queue in config["task_queues"]}
    assert set(queues) == {"urgent", "normal", "bulk"}
    for name, queue in queues.items():
        assert queue.durable and queue.queue_arguments == {"x-queue-type": "quorum"}
        assert queue.exchange.name == name and queue.exchange.type == "topic"
        assert queue.routing_key == name


def test_a_redis_broker_keeps_its_own_keys():
    config = shared_celery_config(Settings(redis_url="redis://127.0.0.1:6390/0"))
    assert config["broker_transport"] != AMQP_TRANSPORT
    assert "task_default_queue_type" not in config
    assert all(not queue.queue_arguments for queue in config["task_queues"])


@pytest.mark.parametrize(
    ("url", "amqp"),
    [(AMQP_URL, True), ("amqps://h/v", True), ("pyamqp://h//", True), ("redis://h/0", False)],
)
def test_which_urls_are_rabbitmq(url, amqp):
    assert is_amqp(url) is amqp
    assert (transport_for(url) == AMQP_TRANSPORT) is amqp


def test_configure_with_a_rabbitmq_url_declares_modq_quorum_queues():
    from modq.client.app import app, configure

    before = {key: app.conf.get(key) for key in shared_celery_config(Settings(broker_url=AMQP_URL))}
    before["result_backend"] = app.conf.result_backend
    try:
        configure(broker_url=AMQP_URL)
        assert app.conf.broker_transport == AMQP_TRANSPORT
        assert all(q.queue_arguments == {"x-queue-type": "quorum"} for q in app.conf.task_queues)
        assert not is_amqp(app.conf.result_backend)
    finally:
        app.conf.update(before)


def test_one_publish_retry_window_for_rabbitmq_in_the_docs_the_setting_and_the_faults():
    """docs/rabbitmq.md advises MODQ_PUBLISH_RETRY_S=60 (what the restart scenario runs with,
    a node down 20 s and its own start); the setting's description said 20."""
    docs = (Path(__file__).resolve().parents[2] / "docs" / "rabbitmq.md").read_text()
    advised = {float(s) for s in re.findall(r"MODQ_PUBLISH_RETRY_S=(\d+)", docs)}
    described = Settings.model_fields["publish_retry_s"].description or ""
    said = {float(s) for s in re.findall(r"(\d+) with RabbitMQ", described)}
    assert advised == said == {PUBLISH_RETRY_S}, (advised, said, PUBLISH_RETRY_S)
