"""The Celery keys producers and workers must agree on, built from ``modq.settings``.

The client's app (``modq.client``) and the worker's ``celeryconfig.py`` both take them from
here, so a message is serialised, routed and laid out in Redis the same way on both sides.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from kombu import Queue
from kombu import connection as kombu_connection

from modq.broker.amqp import AMQP_TRANSPORT, amqp_celery_config, is_amqp
from modq.errors import InvalidContent
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
        **result_store_retry(settings.result_store_retry_s),
        # A producer whose broker is down gets BrokerUnavailable after ~publish_retry_s (plus
        # up to 2 s a try when the host does not answer at all), not a hang.
        "broker_connection_timeout": 2.0,
        "broker_connection_retry_on_startup": True,
        "task_publish_retry_policy": publish_retry_policy(settings.publish_retry_s),
        "result_expires": settings.result_expires_s,
        "result_extended": False,
    }
    transport = transport_for(broker_url)
    if transport is not None:
        config["broker_transport"] = transport
    if is_amqp(broker_url):  # RabbitMQ: quorum queues, persistent messages, confirms
        config.update(amqp_celery_config(settings))
    return config


def transport_for(broker_url: str) -> str | None:
    """The transport modq uses for ``broker_url``; None for kombu's own (from the scheme).

    On Redis a message leaves its queue and enters ``unacked`` in one step (a killed worker
    loses nothing), and producers ring the doorbell that wakes an idle worker at once."""
    if is_amqp(broker_url):
        return AMQP_TRANSPORT
    return REDIS_TRANSPORT if broker_url.partition("://")[0] == "redis" else None


PUBLISH_RETRY_PAUSE_MAX_S = 1.0  # publish retries sleep 0, 0.5, 1, 1, ... seconds


def publish_retry_policy(window_s: float) -> dict[str, float | int]:
    """kombu's publish retry policy: retries whose pauses add up to ``window_s`` (a Redis
    restart that refuses connections for less than that is invisible to producers)."""
    retries, slept_s, pause_s = 0, 0.0, 0.0
    while slept_s < window_s:
        retries += 1
        slept_s += pause_s
        pause_s = min(pause_s + 0.5, PUBLISH_RETRY_PAUSE_MAX_S)
    return {
        "max_retries": max(retries, 1),
        "interval_start": 0.0,
        "interval_step": 0.5,
        "interval_max": PUBLISH_RETRY_PAUSE_MAX_S,
    }


def result_store_retry(window_s: float) -> dict[str, Any]:
    """Celery keys that carry result-store reads and writes through an outage of
    ``window_s``: a worker keeps trying to store a finished job's result (its SQL row is
    already written), a caller reading a state keeps trying. A caller in ``.get()``
    reconnects until its own timeout (``modq.broker.result_store``)."""
    pause_max_ms = 1_000
    return {
        # redis backend writes (SET/PUBLISH) and reconnects: retried until window_s
        "result_backend_transport_options": {
            "retry_policy": {
                "max_retries": None,
                "interval_start": 0.0,
                "interval_step": 0.5,
                "interval_max": pause_max_ms / 1000,
                "timeout": window_s,
            }
        },
        # reads (state, get_task_meta) and stores, on any connection error: full-jitter
        # pauses of at most 1 s, so 2 * window_s tries last about window_s
        "result_backend_always_retry": True,
        "result_backend_max_retries": int(2 * window_s),
        "result_backend_base_sleep_between_retries_ms": 50,
        "result_backend_max_sleep_between_retries_ms": pause_max_ms,
        # a connection idle this long is checked (PING) before use: a restart is noticed at
        # once rather than by the first command that fails on a dead socket
        "redis_backend_health_check_interval": 10,
    }


def max_countdown_s(settings: Settings) -> float:
    """The longest countdown/ETA a producer may ask for: ``MODQ_MAX_COUNTDOWN_S``, else half
    the visibility timeout (the other half is the job's run time and the sweep's delay). On
    Redis a worker holds a job with an ETA unacknowledged until it runs: one held past the
    visibility timeout is redelivered meanwhile, and runs in copies."""
    if settings.max_countdown_s is not None:
        return settings.max_countdown_s
    return settings.visibility_timeout_s / 2


def check_schedule(options: dict[str, Any], settings: Settings) -> None:
    """Refuse (``InvalidContent``) a ``countdown`` or ``eta`` further ahead than
    ``max_countdown_s``; a retry (``retries`` set) is the worker's own and passes."""
    if options.get("retries"):
        return
    ahead_s = _seconds_ahead(options)
    limit_s = max_countdown_s(settings)
    if ahead_s is not None and ahead_s > limit_s:
        raise InvalidContent(
            f"a job may be scheduled at most {limit_s:.0f} s ahead (asked {ahead_s:.0f} s): "
            "the broker would redeliver it while it waits; raise MODQ_VISIBILITY_TIMEOUT_S "
            "(and MODQ_MAX_COUNTDOWN_S), or schedule it outside modq",
            field="countdown" if options.get("countdown") is not None else "eta",
        )


def _seconds_ahead(options: dict[str, Any]) -> float | None:
    countdown, eta = options.get("countdown"), options.get("eta")
    if countdown is not None:
        if isinstance(countdown, bool) or not isinstance(countdown, int | float):
            raise InvalidContent("countdown must be a number of seconds", field="countdown")
        return float(countdown)
    if eta is None:
        return None
    if isinstance(eta, str):
        try:
            eta = dt.datetime.fromisoformat(eta)
        except ValueError as exc:
            raise InvalidContent("eta must be a datetime", field="eta") from exc
    if not isinstance(eta, dt.datetime):
        raise InvalidContent("eta must be a datetime", field="eta")
    if eta.tzinfo is None:  # Celery reads a naive ETA in the app's time zone: UTC
        eta = eta.replace(tzinfo=dt.UTC)
    return (eta - dt.datetime.now(dt.UTC)).total_seconds()
