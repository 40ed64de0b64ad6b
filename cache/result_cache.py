"""A Redis-backed cache of moderation results with an in-process LRU in front.

A cache outage never fails a job: reads degrade to misses and writes are skipped, and both are
counted in ``stats.errors``.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cachetools import TTLCache
from redis import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


@dataclass(slots=True)
class CacheStats:
    hits_local: int = 0
    hits_redis: int = 0
    misses: int = 0
    errors: int = 0

    @property
    def hits(self) -> int:
        return self.hits_local + self.hits_redis


class ResultCache:
    def __init__(self, client: Redis, *, ttl_s: int, lru_items: int) -> None:
        self._client = client
        self._ttl_s = ttl_s
        self._local: TTLCache[str, str] | None = (
            TTLCache(maxsize=lru_items, ttl=ttl_s) if lru_items > 0 else None
        )
        self._lock = threading.Lock()
        self.stats = CacheStats()

    def get(self, key: str) -> dict[str, Any] | None:
        return self.get_many([key])[0]

    def get_many(self, keys: Sequence[str]) -> list[dict[str, Any] | None]:
        """One value (or None) per key: the in-process LRU first, then one MGET for the rest."""
        texts: list[str | None] = [None] * len(keys)
        remote: list[int] = []
        for index, key in enumerate(keys):
            local = self._recall(key)
            if local is None:
                remote.append(index)
            else:
                texts[index] = local
                self._count(hits_local=1)
        if remote:
            try:
                raws = self._client.mget([keys[i] for i in remote])
            except RedisError as exc:
                self._count(errors=1)
                log.warning("result cache read failed, treated as misses: %s", exc)
                raws = [None] * len(remote)
            for index, raw in zip(remote, raws, strict=True):
                if raw is None:
                    self._count(misses=1)
                    continue
                text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
                texts[index] = text
                self._remember(keys[index], text)
                self._count(hits_redis=1)
        return [None if text is None else dict(json.loads(text)) for text in texts]

    def set(self, key: str, value: dict[str, Any]) -> None:
        self.set_many({key: value})

    def set_many(self, values: Mapping[str, dict[str, Any]]) -> None:
        """Write all entries with their TTL in one round trip (a pipeline)."""
        if not values:
            return
        pipeline = self._client.pipeline(transaction=False)
        for key, value in values.items():
            text = json.dumps(value, separators=(",", ":"))
            self._remember(key, text)
            pipeline.set(key, text, ex=self._ttl_s)
        try:
            pipeline.execute()
        except RedisError as exc:
            self._count(errors=1)
            log.warning("result cache write failed, skipped: %s", exc)

    def close(self) -> None:
        self._client.close()

    def _remember(self, key: str, text: str) -> None:
        if self._local is not None:
            with self._lock:
                self._local[key] = text

    def _recall(self, key: str) -> str | None:
        if self._local is None:
            return None
        with self._lock:
            return self._local.get(key)

    def _count(self, **increments: int) -> None:
        with self._lock:
            for name, value in increments.items():
                setattr(self.stats, name, getattr(self.stats, name) + value)
