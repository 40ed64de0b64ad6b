"""tests/rabbitmq: modq on a private RabbitMQ node (tests/rabbitmq/fixtures.py); results stay
in the session's private Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench.faults.rabbitmq_node import RabbitNode
from tests.rabbitmq.fixtures import rabbit_node, rabbitmq_vhost  # noqa: F401  # fixtures
from tests.tasks.conftest import tiny_model_dir  # noqa: F401  # the tiny model for workers
from tests.workers import flush_private_redis


@pytest.fixture
def amqp_url(rabbit_node: RabbitNode) -> Iterator[str]:  # noqa: F811
    """A fresh vhost on the private node, with this process's apps pointed at it."""
    flush_private_redis()
    with rabbitmq_vhost(rabbit_node) as url:
        yield url
    flush_private_redis()
