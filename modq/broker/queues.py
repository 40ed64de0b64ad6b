"""The broker's Redis queues as kombu lays them out: depth and the oldest waiting message.

kombu's Redis transport keeps one list per (queue, priority step): the key is the queue name
for step 0 and ``f"{queue}\\x06\\x16{step}"`` for the others, all behind the optional
``global_keyprefix``. Producers LPUSH and consumers BRPOP, so a list's tail is its oldest
message. Messages a worker has reserved (prefetched, unacked) are not in these lists.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from kombu.transport.redis import PRIORITY_STEPS, Channel
from redis import Redis

from modq.broker.amqp import AmqpQueues, is_amqp
from modq.errors import BrokerUnavailable
from modq.redact_urls import mask_url

ENQUEUED_AT_HEADER = "modq_enqueued_at_s"  # set by the producer (tasks/moderate.py)
REDIS_SOCKET_TIMEOUT_S = 2.0  # same as the producer's broker_connection_timeout


def redis_url_from_broker_url(broker_url: str) -> str:
    """The redis-py URL of a kombu Redis broker URL; ``BrokerUnavailable`` if it is not Redis."""
    scheme, sep, rest = broker_url.partition("://")
    if not sep:
        raise BrokerUnavailable(f"not a broker URL: {mask_url(broker_url)!r}")
    if scheme in ("redis", "rediss"):
        return broker_url
    if scheme in ("redis+socket", "socket"):
        return f"unix://{rest}"
    if is_amqp(broker_url):
        raise BrokerUnavailable(
            "on RabbitMQ producers do not count queued items (MODQ_MAX_QUEUE_DEPTH_* bound "
            "Redis queues); bound RabbitMQ's with a max-length policy (docs/rabbitmq.md)",
            scheme=scheme,
        )
    raise BrokerUnavailable(
        f"queue depth is read from a Redis broker only, not {scheme}://",
        scheme=scheme,
    )


class BrokerQueues:
    """Reads the broker's queues (one pipelined round trip per call)."""

    def __init__(self, broker_url: str, transport_options: Mapping[str, Any]) -> None:
        self.redis_url = redis_url_from_broker_url(broker_url)
        self.key_prefix = str(transport_options.get("global_keyprefix", ""))
        steps = transport_options.get("priority_steps", PRIORITY_STEPS)
        self.priority_steps: tuple[int, ...] = tuple(int(s) for s in steps)
        self._client: Redis | None = None
        self._client_pid = 0
        self._lock = threading.Lock()

    @classmethod
    def from_app(cls, app: Any) -> BrokerQueues:
        """The queues of a Celery app's broker, laid out by its transport options."""
        conf = app.conf
        return cls(str(conf.broker_url), dict(conf.broker_transport_options or {}))

    @property
    def redis(self) -> Redis:
        """A client for this process (rebuilt after fork)."""
        with self._lock:
            if self._client is None or self._client_pid != os.getpid():
                self._client = Redis.from_url(
                    self.redis_url,
                    socket_timeout=REDIS_SOCKET_TIMEOUT_S,
                    socket_connect_timeout=REDIS_SOCKET_TIMEOUT_S,
                )
                self._client_pid = os.getpid()
            return self._client

    def keys(self, queue: str) -> list[str]:
        """The Redis lists that hold ``queue``'s waiting messages, one per priority step."""
        keys: list[str] = []
        for step in self.priority_steps:
            key = self.key_prefix + (f"{queue}{Channel.sep}{step}" if step else queue)
            if key not in keys:
                keys.append(key)
        return keys

    def depths(self, queues: Iterable[str]) -> dict[str, int]:
        """Waiting messages per queue (LLEN summed over its priority lists)."""
        names = list(queues)
        with self.redis.pipeline(transaction=False) as pipe:
            for queue in names:
                for key in self.keys(queue):
                    pipe.llen(key)
            sizes = iter(pipe.execute())
        return {queue: sum(int(next(sizes)) for _ in self.keys(queue)) for queue in names}

    def oldest_enqueued_at_s(self, queues: Iterable[str]) -> dict[str, float | None]:
        """Enqueue time of each queue's oldest waiting modq message; None when it has none."""
        names = list(queues)
        with self.redis.pipeline(transaction=False) as pipe:
            for queue in names:
                for key in self.keys(queue):
                    pipe.lindex(key, -1)
            tails = iter(pipe.execute())
        oldest: dict[str, float | None] = {}
        for queue in names:
            stamps = [enqueued_at_s(next(tails)) for _ in self.keys(queue)]
            known = [s for s in stamps if s is not None]
            oldest[queue] = min(known) if known else None
        return oldest


def enqueued_at_s(raw: bytes | str | None) -> float | None:
    """The enqueue time carried by one raw kombu message (header first, else task kwargs)."""
    if raw is None:
        return None
    try:
        message = json.loads(raw)
        headers = message.get("headers") or {}
        if isinstance(headers.get(ENQUEUED_AT_HEADER), int | float):
            return float(headers[ENQUEUED_AT_HEADER])
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        _, kwargs, _ = json.loads(body)
        value = kwargs.get("enqueued_at_s")
        return float(value) if isinstance(value, int | float) else None
    except (ValueError, TypeError, KeyError, AttributeError):
        return None  # a foreign or malformed message carries no modq timestamp


class QueueReader(Protocol):
    """What the metrics read of a broker's queues: ``BrokerQueues`` (Redis) or
    ``AmqpQueues`` (RabbitMQ); ``redis`` holds the wait-time histogram and refusal counters."""

    key_prefix: str

    @property
    def redis(self) -> Redis: ...

    def depths(self, queues: Iterable[str]) -> dict[str, int]: ...

    def oldest_enqueued_at_s(self, queues: Iterable[str]) -> dict[str, float | None]: ...


def queue_reader(app: Any) -> QueueReader:
    """The reader of ``app``'s broker queues: RabbitMQ's for an AMQP URL, else Redis lists
    (``BrokerUnavailable`` for any other broker)."""
    if is_amqp(str(app.conf.broker_url)):
        return AmqpQueues.from_app(app)
    return BrokerQueues.from_app(app)
