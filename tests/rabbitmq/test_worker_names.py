"""Two `modq worker` commands on one host on RabbitMQ. Each node's remote-control queue
(``<name>.celery.pidbox``) is exclusive there: a second worker under the same name died at
start with ``405 RESOURCE_LOCKED``. Redis: tests/cli/test_worker_group.py."""

from __future__ import annotations

import pytest

import migrations
from tests.cli.side_by_side import check_two_workers_on_one_host

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_two_workers_on_one_host_on_rabbitmq(amqp_url, tiny_model_dir, tmp_path):
    url = f"sqlite:///{tmp_path / 'results.db'}"
    migrations.upgrade(url)
    env = {"MODQ_DATABASE_URL": url, "MODQ_MODEL_DIR": str(tiny_model_dir)}
    check_two_workers_on_one_host(env, tmp_path)
