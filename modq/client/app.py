"""The client's own Celery app: configured from modq's settings (``MODQ_BROKER_URL``, or
``MODQ_REDIS_URL``) or by ``configure()``, never from the importing app's ``celeryconfig``,
and never made the process's current app."""

from __future__ import annotations

from typing import Any

from celery import Celery

from modq.broker.amqp import amqp_celery_config, is_amqp
from modq.broker.config import shared_celery_config, transport_for
from modq.broker.result_store import RESULT_BACKENDS
from modq.settings import get_settings

app = Celery("modq", set_as_current=False, loader="celery.loaders.app:AppLoader")
app.conf.update(shared_celery_config(get_settings()))
# redis:// results through modq's backend, whose waiters outlive a Redis restart
app.loader.override_backends = RESULT_BACKENDS


def configure(
    *, broker_url: str | None = None, result_backend: str | None = None, **celery_options: Any
) -> Celery:
    """Point the client at a broker and result store (default: ``MODQ_BROKER_URL`` /
    ``MODQ_RESULT_BACKEND_URL``, else ``MODQ_REDIS_URL``). Extra keyword arguments are Celery
    settings. Call it before the first job is sent; it returns the client's app."""
    from modq.broker.backpressure import reset_admission

    settings = get_settings()
    changes = dict(celery_options)
    if broker_url is not None:
        changes["broker_url"] = broker_url
        changes.setdefault("broker_transport", transport_for(broker_url))
        if is_amqp(broker_url):  # RabbitMQ: modq's quorum queues and confirms, as workers
            for key, value in amqp_celery_config(settings).items():
                changes.setdefault(key, value)
        if result_backend is None and settings.result_backend_url is None:
            # as with the environment: a Redis broker is the result store too
            result_backend = settings.model_copy(
                update={"broker_url": broker_url}
            ).effective_result_backend_url
    if result_backend is not None:
        changes["result_backend"] = result_backend
    app.conf.update(changes)
    reset_admission()
    return app
