"""Per-key rate limits, kept in Redis so every API process shares one budget per key.

A token bucket per key: ``burst`` tokens, refilled at ``per_min / 60`` a second. One Lua script
reads, refills and takes a token atomically, on Redis's own clock (``TIME``), so processes on
different hosts agree and no two requests race for the last token.
"""

from __future__ import annotations

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError

from api.auth import Principal
from modq.errors import RateLimited, StorageUnavailable
from modq.settings import get_settings

KEY_PREFIX = "modq:ratelimit:"

# KEYS[1] bucket; ARGV rate (tokens/s), burst, cost. Returns the wait in seconds (0 = allowed)
# as a string: Lua numbers come back from Redis truncated to integers.
_TOKEN_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
else
  wait = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


class RateLimiter:
    """``await admit(principal)`` (the routes), ``check(key_id)`` (blocking) or
    ``await acheck(key_id)``: RateLimited when over budget.

    ``per_min`` 0 turns limiting off; a key's own limit, passed to each check, wins. A Redis
    failure raises StorageUnavailable (503): the broker is that Redis too, so a request could
    not be enqueued anyway.
    """

    def __init__(
        self,
        redis_url: str,
        *,
        per_min: float | None = None,
        burst: int | None = None,
        prefix: str = KEY_PREFIX,
    ) -> None:
        settings = get_settings()
        self.per_min = settings.rate_limit_per_min if per_min is None else per_min
        self.burst = settings.rate_limit_burst if burst is None else burst
        self._prefix = prefix
        self._redis = Redis.from_url(redis_url)
        self._aredis = AsyncRedis.from_url(redis_url)
        self._script = self._redis.register_script(_TOKEN_BUCKET)
        self._ascript = self._aredis.register_script(_TOKEN_BUCKET)

    def _args(self, per_min: float | None) -> list[float]:
        if per_min is None:
            return [self.per_min / 60.0, float(self.burst), 1.0]
        # a key with a rate of its own gets at most one minute's worth at once
        return [per_min / 60.0, min(float(self.burst), max(1.0, per_min)), 1.0]

    def check(self, key_id: str, *, per_min: float | None = None) -> None:
        """Take one request from ``key_id``'s budget, or raise RateLimited(retry_after_s=...).
        ``per_min`` is the key's own limit (``Principal.rate_limit_per_min``); None = the
        limiter's."""
        rate = self.per_min if per_min is None else per_min
        if rate <= 0:
            return
        try:
            wait_s = float(self._script(keys=[self._prefix + key_id], args=self._args(per_min)))
        except RedisError as exc:
            raise StorageUnavailable(f"rate limiter unreachable: {type(exc).__name__}") from exc
        _raise_if_waiting(wait_s)

    async def admit(self, principal: Principal) -> None:
        """Charge one request to the caller's bucket at the caller's own rate (the key's
        ``--rate-per-min`` when it has one, else the server's): the one check the routes use,
        so no route can forget the key's limit."""
        await self.acheck(principal.key_id, per_min=principal.rate_limit_per_min)

    async def acheck(self, key_id: str, *, per_min: float | None = None) -> None:
        """``check`` without blocking the event loop."""
        rate = self.per_min if per_min is None else per_min
        if rate <= 0:
            return
        try:
            keys = [self._prefix + key_id]
            wait_s = float(await self._ascript(keys=keys, args=self._args(per_min)))
        except RedisError as exc:
            raise StorageUnavailable(f"rate limiter unreachable: {type(exc).__name__}") from exc
        _raise_if_waiting(wait_s)

    def close(self) -> None:
        self._redis.close()

    async def aclose(self) -> None:
        await self._aredis.aclose()
        self._redis.close()


def _raise_if_waiting(wait_s: float) -> None:
    if wait_s > 0:
        raise RateLimited(retry_after_s=round(wait_s, 3))
