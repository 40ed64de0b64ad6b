"""Fixtures of a private RabbitMQ node, for tests/rabbitmq and the broker-parametrized tests
elsewhere (tests/tasks/test_urgency.py): a node for the session (about 4 s to start), and a
fresh vhost with this process's apps pointed at it. Never the machine's shared 5672 node."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest

from bench.faults.rabbitmq_node import RabbitNode, rabbitmq_available
from tests.rabbitmq.apps import apps_on_broker


@pytest.fixture(scope="session")
def rabbit_node() -> Iterator[RabbitNode]:
    if not rabbitmq_available():
        pytest.skip("rabbitmq-server is not installed, or this is not root")
    node = RabbitNode()
    try:
        node.start()
        yield node
    finally:
        node.close()


@contextlib.contextmanager
def rabbitmq_vhost(node: RabbitNode) -> Iterator[str]:
    """A new vhost on ``node`` (guest may do everything), this process's apps and the workers
    it starts pointed at it; yields its URL, deletes it on exit."""
    vhost = f"modq-{uuid.uuid4().hex[:8]}"
    node.ctl("add_vhost", vhost)
    try:
        node.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        url = f"amqp://guest:guest@127.0.0.1:{node.port}/{vhost}"
        with apps_on_broker(url):
            yield url
    finally:
        with contextlib.suppress(RuntimeError):  # a node a test stopped takes its vhosts along
            node.ctl("delete_vhost", vhost)
