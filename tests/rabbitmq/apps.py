"""Point this test process's Celery apps (the worker's ``tasks.app`` and the client's) at
another broker for a while: producers, ``app.control`` and result reads all follow."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from modq.broker.backpressure import reset_admission
from modq.broker.config import shared_celery_config
from modq.settings import get_settings


def _kombu_pools() -> dict[int, Any]:
    """kombu's process-wide connection and producer pools (Celery apps share them, keyed by
    broker URL), by identity."""
    from kombu import pools

    return {
        id(pool): pool for group in (pools.connections, pools.producers) for pool in group.values()
    }


def _detach(app: Any) -> None:
    """Make the app look its pools up again on next use. The pools stay open: they are kombu's
    shared ones (the other app on the same URL holds them too)."""
    app._pool = None
    app.__dict__.pop("amqp", None)


def _close_pools_since(before: dict[int, Any]) -> None:
    """Close and unregister the pools made since ``before`` (those for the other broker), so
    no socket is left open and no later app is handed a closed pool."""
    from kombu import pools

    for group in (pools.connections, pools.producers):
        for key, pool in list(group.items()):
            if id(pool) not in before:
                with contextlib.suppress(Exception):
                    pool.force_close_all()
                dict.__delitem__(group, key)  # keys are already eqhash()ed


@contextlib.contextmanager
def apps_on_broker(broker_url: str) -> Iterator[None]:
    """Both apps, and workers started meanwhile (``MODQ_BROKER_URL``), use ``broker_url``;
    the results stay in ``MODQ_REDIS_URL``. Everything is put back on exit."""
    from modq.client.app import app as client_app
    from tasks.app import app as worker_app

    # read the apps' settings before MODQ_BROKER_URL changes: an app whose configuration is
    # first read after would load celeryconfig.py with the new URL and "restore" that
    saved = [
        (app, {key: app.conf.get(key) for key in shared_celery_config(get_settings())})
        for app in (worker_app, client_app)
    ]
    before = os.environ.get("MODQ_BROKER_URL")
    os.environ["MODQ_BROKER_URL"] = broker_url
    get_settings.cache_clear()
    config = shared_celery_config(get_settings())
    for app, conf in saved:  # keys only the other broker sets (RabbitMQ's queue declarations)
        conf.update({key: app.conf.get(key) for key in config if key not in conf})
    pools_before = _kombu_pools()
    try:
        for app, _ in saved:
            app.conf.update(config)
            _detach(app)
        reset_admission()
        yield
    finally:
        if before is None:
            os.environ.pop("MODQ_BROKER_URL", None)
        else:
            os.environ["MODQ_BROKER_URL"] = before
        get_settings.cache_clear()
        for app, conf in saved:
            app.conf.update(conf)
            _detach(app)
        _close_pools_since(pools_before)
        reset_admission()
