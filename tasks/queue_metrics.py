"""Prometheus metrics of the priority queues, read from the broker's Redis at scrape time.

Flower has no queue-depth metric. One scrape is two pipelined round trips to Redis:

    modq_queue_depth{queue}               gauge      waiting messages (reserved ones excluded)
    modq_queue_oldest_age_seconds{queue}  gauge      age of the oldest waiting message; 0 if none
    modq_queue_depth_bound{queue}         gauge      the producers' bound; 0 = unbounded
    modq_queue_wait_seconds{queue}        histogram  enqueue-to-start wait, all workers together
    modq_overloaded_total{queue}          counter    enqueues refused with Overloaded
    modq_broker_up                        gauge      1 if the broker answered this scrape
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry
from redis.exceptions import RedisError

from modq.broker.backpressure import OVERLOADED_KEY, bounds_from
from modq.broker.queues import QueueReader
from modq.errors import BrokerUnavailable
from modq.schemas import Priority
from modq.settings import Settings
from tasks.wait_time import read_waits, text

log = logging.getLogger(__name__)

QUEUES: tuple[str, ...] = tuple(p.value for p in Priority)


class QueueCollector(Collector):
    """Reads depth, oldest age, wait histogram and refusals of each queue when scraped."""

    def __init__(
        self,
        queues: QueueReader,
        settings: Settings,
        *,
        names: Sequence[str] = QUEUES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.queues = queues
        self.names = tuple(names)
        self.bounds = bounds_from(settings)
        self.prefix = settings.metrics_key_prefix
        self._clock = clock

    def describe(self) -> Iterator[Metric]:
        return iter(())  # metrics are built per scrape; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("modq_broker_up", "1 if the broker's Redis answered this scrape.")
        try:
            depths = self.queues.depths(self.names)
            oldest = self.queues.oldest_enqueued_at_s(self.names)
            waits = read_waits(self.queues, self.prefix, self.names)
            refused = self.queues.redis.hgetall(self.prefix + OVERLOADED_KEY)
        except (RedisError, BrokerUnavailable) as exc:
            log.warning("modq: scrape could not read the broker: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        now_s = self._clock()
        depth = GaugeMetricFamily(
            "modq_queue_depth", "Messages waiting in the queue.", labels=["queue"]
        )
        age = GaugeMetricFamily(
            "modq_queue_oldest_age_seconds",
            "Age of the oldest waiting message (0 when the queue is empty).",
            labels=["queue"],
        )
        bound = GaugeMetricFamily(
            "modq_queue_depth_bound",
            "Waiting messages past which producers get Overloaded (0 = unbounded).",
            labels=["queue"],
        )
        wait = HistogramMetricFamily(
            "modq_queue_wait_seconds",
            "Time from enqueue to the start of the job (first attempts).",
            labels=["queue"],
        )
        overloaded = CounterMetricFamily(
            "modq_overloaded",
            "Enqueues refused with Overloaded.",
            labels=["queue"],
        )
        refusals = {text(k): float(v) for k, v in refused.items()}
        for name in self.names:
            depth.add_metric([name], depths[name])
            since_s = oldest[name]
            age.add_metric([name], max(0.0, now_s - since_s) if since_s is not None else 0.0)
            bound.add_metric([name], self.bounds.get(name, 0))
            buckets, total_s = waits[name]
            wait.add_metric([name], buckets, total_s)
            overloaded.add_metric([name], refusals.get(name, 0.0))
        yield from (depth, age, bound, wait, overloaded)


def make_registry(queues: QueueReader, settings: Settings) -> CollectorRegistry:
    """A registry holding only the queue collector (the exporter's own process is not news)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueCollector(queues, settings))
    return registry


def serve(host: str, port: int, registry: CollectorRegistry) -> tuple[Any, Any]:
    """Serve ``/metrics`` on ``host:port`` from a daemon thread; returns (server, thread).
    ``port`` 0 takes a free one: read it from ``server.server_port``."""
    from prometheus_client import start_http_server

    return start_http_server(port, addr=host, registry=registry)
