"""Worker heartbeats: the one signal of readiness that a busy worker still produces.

Every worker that moderates writes, each ``INTERVAL_S``, one field of the Redis hash ``KEY``
(its node name) with its serving state and Redis's own clock (``TIME``), from a thread of its
own: a worker whose task threads are all busy still beats. The API counts the workers whose
last beat is younger than ``STALE_S`` (by the same clock, so hosts' clocks never matter) and
that serve (``serves``). A remote-control broadcast, which a loaded worker answers late, is
never needed. A worker that stops warmly deletes its field; one that dies is stale after
``STALE_S``; fields older than ``FORGET_S`` are dropped by whoever reads them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from redis import Redis

KEY = "modq:workers:heartbeat"
INTERVAL_S = 1.0  # a worker beats this often
STALE_S = 6.0  # a worker whose last beat is older is not counted (five missed beats)
FORGET_S = 3600.0  # a beat older than this is deleted by a reader


def serves(state: Mapping[str, Any]) -> bool:
    """A worker serves jobs when its model is loaded and its model breaker is not open, or is
    open with a CPU fallback serving (the fields of ``modq_stats``)."""
    if not state.get("model_loaded"):
        return False
    return state.get("model_breaker") != "open" or bool(state.get("model_fallback"))


def redis_now_s(redis: Redis) -> float:
    seconds, micros = redis.time()
    return float(seconds) + micros / 1e6


def beat(redis: Redis, node: str, state: Mapping[str, Any]) -> None:
    """Record that ``node`` is alive now, in ``state`` (``model_loaded``, ``model_breaker``,
    ``model_fallback``)."""
    record = {**state, "at_s": redis_now_s(redis)}
    redis.hset(KEY, node, json.dumps(record, separators=(",", ":")))


def forget(redis: Redis, node: str) -> None:
    """``node`` stops: it is no longer counted, at once."""
    redis.hdel(KEY, node)


@dataclass(frozen=True, slots=True)
class Pulse:
    """The workers seen within ``STALE_S``: how many, and how many of them serve."""

    alive: int
    serving: int


def read(redis: Redis, *, stale_s: float = STALE_S) -> Pulse:
    """Count the live and the serving workers; delete beats older than ``FORGET_S``."""
    now_s = redis_now_s(redis)
    alive = serving = 0
    forgotten: list[bytes | str] = []
    for node, raw in redis.hgetall(KEY).items():
        try:
            record = json.loads(raw)
            age_s = now_s - float(record["at_s"])
        except (ValueError, TypeError, KeyError):
            forgotten.append(node)
            continue
        if age_s > FORGET_S:
            forgotten.append(node)
        elif age_s <= stale_s:
            alive += 1
            serving += serves(record)
    if forgotten:
        redis.hdel(KEY, *forgotten)
    return Pulse(alive, serving)
