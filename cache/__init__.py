"""Result cache: Redis with TTL behind an in-process LRU."""

from cache.keys import cache_key, content_sha256, normalize_content
from cache.result_cache import CacheStats, ResultCache

__all__ = ["CacheStats", "ResultCache", "cache_key", "content_sha256", "normalize_content"]
