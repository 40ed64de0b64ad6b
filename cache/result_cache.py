"""A Redis-backed cache of moderation results with an in-process LRU in front.

A cache outage never fails a job: reads degrade to misses and writes are skipped, and both are
counted in ``stats.errors``.
"""

from __future__ import annotations

import json
import logging
import threading
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
        if self._local is not None:
            with self._lock:
                local = self._local.get(key)
            if local is not None:
                self.stats.hits_local += 1
                return dict(json.loads(local))
        try:
            raw = self._client.get(key)
        except RedisError as exc:
            self.stats.errors += 1
            log.warning("result cache read failed, treated as a miss: %s", exc)
            return None
        if raw is None:
            self.stats.misses += 1
            return None
        self.stats.hits_redis += 1
        text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
        self._remember(key, text)
        return dict(json.loads(text))

    def set(self, key: str, value: dict[str, Any]) -> None:
        text = json.dumps(value, separators=(",", ":"))
        self._remember(key, text)
        try:
            self._client.set(key, text, ex=self._ttl_s)
        except RedisError as exc:
            self.stats.errors += 1
            log.warning("result cache write failed, skipped: %s", exc)

    def close(self) -> None:
        self._client.close()

    def _remember(self, key: str, text: str) -> None:
        if self._local is not None:
            with self._lock:
                self._local[key] = text
