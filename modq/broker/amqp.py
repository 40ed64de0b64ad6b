"""RabbitMQ (AMQP) as modq's broker: durable quorum queues, persistent messages, confirms.

``MODQ_BROKER_URL=amqp://…`` switches producers and workers here (``shared_celery_config``);
results stay in Redis (``MODQ_REDIS_URL``). What changes from Redis (docs/rabbitmq.md):

- The three priority queues are **quorum queues** (durable, replicated on a cluster, every
  message fsynced) behind topic exchanges of their own name, so Celery's native delayed
  delivery holds a retry's countdown in the broker, not unacked in a worker.
- Messages are persistent (delivery mode 2) and published with **publisher confirms**: a
  publish returns once the broker has the message, so a broker restart loses nothing a
  producer was told it accepted. A nack (a queue full under a ``max-length`` policy with
  ``overflow: reject-publish``) is ``Overloaded``.
- Urgent stays first by queue, as on Redis: quorum queues have no message priority, and
  Celery gives each queue its own consumer and prefetch (per-consumer QoS), so an urgent
  message is delivered while bulk work holds every other slot.
- Queue depth comes from the broker (a passive declare); the oldest message's age cannot be
  read without taking it, so it reads as unknown. Producers do not count items against
  ``MODQ_MAX_QUEUE_DEPTH_*`` here: bound a queue with a RabbitMQ ``max-length`` policy.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterable
from typing import Any

from amqp.exceptions import MessageNacked
from celery.app import base as celery_app_base
from kombu import Connection, Exchange, Queue
from kombu import connection as kombu_connection
from kombu.exceptions import OperationalError as KombuOperationalError
from kombu.transport import pyamqp
from redis import Redis

from modq.errors import BrokerUnavailable, Overloaded
from modq.schemas import Priority
from modq.settings import Settings, get_settings

log = logging.getLogger(__name__)

AMQP_SCHEMES = ("amqp", "amqps", "pyamqp")
AMQP_TRANSPORT = "modq.broker.amqp:Transport"
QUEUE_TYPE = "quorum"
CONNECT_TIMEOUT_S = 2.0  # as the producer's broker_connection_timeout
CONFIRM_TIMEOUT_S = 10.0  # longest a publish waits for the broker's ack before it fails
# A connection on modq's transport still writes its URL as amqp:// (Flower parses it).
kombu_connection.resolve_aliases.setdefault(AMQP_TRANSPORT, "amqp")


def is_amqp(broker_url: str) -> bool:
    """True for a RabbitMQ broker URL (``amqp://``, ``amqps://``, ``pyamqp://``)."""
    return broker_url.partition("://")[0] in AMQP_SCHEMES


def queue_arguments() -> dict[str, Any]:
    """The arguments every modq queue is declared with (producers and workers alike: RabbitMQ
    refuses a second declaration with other arguments, 406 PRECONDITION_FAILED)."""
    return {"x-queue-type": QUEUE_TYPE}


def amqp_queue(name: str) -> Queue:
    """One durable quorum queue behind a topic exchange of its own name."""
    return Queue(
        name,
        Exchange(name, type="topic", durable=True),
        routing_key=name,
        durable=True,
        queue_arguments=queue_arguments(),
    )


def amqp_celery_config(settings: Settings) -> dict[str, Any]:
    """The Celery keys that differ on RabbitMQ; ``shared_celery_config`` lays them over its
    own when the broker URL is AMQP."""
    del settings  # nothing tunable yet beyond what shared_celery_config already reads
    return {
        "task_queues": tuple(amqp_queue(p.value) for p in Priority),
        "task_default_queue_type": QUEUE_TYPE,
        "task_default_exchange_type": "topic",
        # a chain's or stock producer's unknown queue is made like modq's own
        "task_create_missing_queue_type": QUEUE_TYPE,
        "task_create_missing_queue_exchange_type": "topic",
        "task_default_delivery_mode": "persistent",
        # quorum queues have no global QoS: each queue gets its own prefetch
        "worker_detect_quorum_queues": True,
        "broker_native_delayed_delivery_queue_type": QUEUE_TYPE,
        "broker_transport": AMQP_TRANSPORT,
        "broker_transport_options": {
            "confirm_publish": True,
            "confirm_timeout": CONFIRM_TIMEOUT_S,
        },
    }


def _whole_seconds_ahead(countdown: int, routing_key: str) -> str:
    """Celery's native delayed delivery (quorum queues) with a countdown under 1 s: Celery
    truncates it to 0 and kombu refuses 0 (``ValueError``), so the retry of a job whose drawn
    delay was 0.7 s failed for good. Such a countdown is sent 1 s ahead instead."""
    return _calculate_routing_key(max(1, countdown), routing_key)


_calculate_routing_key = celery_app_base.calculate_routing_key
celery_app_base.calculate_routing_key = _whole_seconds_ahead


class Channel(pyamqp.Channel):
    """kombu's AMQP channel; a publish the broker nacks raises ``Overloaded``."""

    def basic_publish_confirm(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().basic_publish_confirm(*args, **kwargs)
        except MessageNacked as exc:
            queue = str(kwargs.get("routing_key") or (args[2] if len(args) > 2 else ""))
            raise Overloaded(
                f"RabbitMQ refused the message for queue {queue!r} (nack: the queue is at its "
                "max-length, or unavailable); nothing was enqueued, retry later",
                queue=queue,
            ) from exc


class _Connection(pyamqp.Connection):
    Channel = Channel


class Transport(pyamqp.Transport):
    """kombu's ``pyamqp`` transport with modq's channel (nack -> ``Overloaded``)."""

    Connection = _Connection


class AmqpQueues:
    """The broker's queues on RabbitMQ: depth by a passive declare, one connection per call.
    ``redis`` is modq's own Redis (``MODQ_REDIS_URL``), where workers keep the wait-time
    histogram and refusal counters that the exporter reads."""

    key_prefix = ""

    def __init__(self, broker_url: str, redis_url: str) -> None:
        self.broker_url = broker_url
        self.redis_url = redis_url
        self._client: Redis | None = None
        self._client_pid = 0
        self._lock = threading.Lock()

    @classmethod
    def from_app(cls, app: Any) -> AmqpQueues:
        return cls(str(app.conf.broker_url), get_settings().redis_url)

    @property
    def redis(self) -> Redis:
        """A client of modq's Redis for this process (rebuilt after fork)."""
        with self._lock:
            if self._client is None or self._client_pid != os.getpid():
                self._client = Redis.from_url(
                    self.redis_url,
                    socket_timeout=CONNECT_TIMEOUT_S,
                    socket_connect_timeout=CONNECT_TIMEOUT_S,
                )
                self._client_pid = os.getpid()
            return self._client

    def depths(self, queues: Iterable[str]) -> dict[str, int]:
        """Ready messages per queue (delivered, unacknowledged ones excluded); 0 for a queue
        not declared yet. ``BrokerUnavailable`` when RabbitMQ cannot be reached."""
        names = list(queues)
        depths: dict[str, int] = {}
        try:
            with Connection(self.broker_url, connect_timeout=CONNECT_TIMEOUT_S) as connection:
                connection.ensure_connection(max_retries=1, timeout=CONNECT_TIMEOUT_S)
                for name in names:
                    channel = connection.channel()
                    try:
                        _, count, _ = channel.queue_declare(queue=name, passive=True)
                        depths[name] = int(count)
                    except connection.channel_errors:  # 404: not declared yet
                        depths[name] = 0
                    finally:
                        with contextlib.suppress(Exception):  # a 404 closed it already
                            channel.close()
        except (
            OSError,
            KombuOperationalError,
            *Connection(self.broker_url).connection_errors,
        ) as exc:
            raise BrokerUnavailable(
                f"cannot read queue depths from RabbitMQ: {type(exc).__name__}"
            ) from exc
        return depths

    def oldest_enqueued_at_s(self, queues: Iterable[str]) -> dict[str, float | None]:
        """Unknown on RabbitMQ (a message cannot be read without being taken): None each."""
        return {name: None for name in queues}
