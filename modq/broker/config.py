"""The Celery keys producers and workers must agree on, built from ``modq.settings``.

The client's app (``modq.client``) and the worker's ``celeryconfig.py`` both take them from
here, so a message is serialised, routed and laid out in Redis the same way on both sides.
"""

from __future__ import annotations

from typing import Any

from kombu import Queue
from kombu import connection as kombu_connection

from modq.schemas import Priority
from modq.settings import Settings

# kombu's Redis transport with the atomic fetch and the doorbells (modq/broker/transport.py).
REDIS_TRANSPORT = "modq.broker.transport:Transport"
# A connection on it still reads back as ``redis://…`` (``as_uri()``): kombu names a transport
# by this alias table when it writes a URL, and tools that parse that URL (Flower's broker tab,
# `/api/queues/length`) know the scheme ``redis``, not a class path. Only connections that use
# modq's transport are affected; the transport itself is unchanged.
kombu_connection.resolve_aliases.setdefault(REDIS_TRANSPORT, "redis")


def shared_celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings for any process that sends or runs modq tasks."""
    broker_url = settings.effective_broker_url
    config: dict[str, Any] = {
        "broker_url": broker_url,
        "result_backend": settings.effective_result_backend_url,
        # JSON only: never pickle.
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_queues": tuple(Queue(p.value, routing_key=p.value) for p in Priority),
        "task_default_queue": Priority.NORMAL.value,
        # the job's priority argument picks its queue, whoever sends it
        "task_routes": ("modq.broker.routes.route_by_priority",),
        "broker_transport_options": {
            "queue_order_strategy": "priority",
            "visibility_timeout": settings.visibility_timeout_s,
            # sweep every interval (throttle 1), not every 10th: a lost worker's jobs come
            # back soon after their visibility timeout instead of up to 10 intervals later
            "unacked_restore_interval": settings.unacked_restore_interval_s,
            "unacked_restore_throttle": 1,
            # modq's transport: how often an idle consumer looks for un-belled jobs (seconds)
            "look_interval": settings.queue_look_interval_ms / 1000,
        },
        "result_backend_transport_options": {"retry_policy": {"timeout": 5.0}},
        # A producer whose broker is down gets BrokerUnavailable after ~2 s, not a hang.
        "broker_connection_timeout": 2.0,
        "broker_connection_retry_on_startup": True,
        "task_publish_retry_policy": {
            "max_retries": 2,
            "interval_start": 0.0,
            "interval_step": 0.5,
            "interval_max": 1.0,
        },
        "result_expires": settings.result_expires_s,
        "result_extended": False,
    }
    transport = transport_for(broker_url)
    if transport is not None:
        config["broker_transport"] = transport
    return config


def transport_for(broker_url: str) -> str | None:
    """The transport modq uses for ``broker_url``; None for kombu's own (from the scheme).

    On Redis a message leaves its queue and enters ``unacked`` in one step (a killed worker
    loses nothing), and producers ring the doorbell that wakes an idle worker at once."""
    return REDIS_TRANSPORT if broker_url.partition("://")[0] == "redis" else None
