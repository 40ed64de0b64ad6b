"""Per-key rate limits in a private Redis: one budget per key across limiters and processes,
429 with Retry-After on a real server, refill on time."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from redis import Redis

import migrations
from api.auth import KeyAuthenticator
from api.ratelimit import RateLimiter
from db.api_keys import ApiKeyRepository
from db.session import make_engine
from modq.errors import RateLimited, StorageUnavailable
from tests.api.keys_support import call, keys_app, serving
from tests.polling import wait_until

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def prefix() -> str:
    """A bucket namespace of this test's own in the session's private Redis."""
    return f"test:ratelimit:{uuid.uuid4().hex[:8]}:"


def _passes(limiter: RateLimiter, key_id: str) -> bool:
    try:
        limiter.check(key_id)
    except RateLimited:
        return False
    return True


def test_two_limiters_share_one_budget_per_key(redis_url, prefix):
    first = RateLimiter(redis_url, per_min=60, burst=3, prefix=prefix)
    second = RateLimiter(redis_url, per_min=60, burst=3, prefix=prefix)
    try:
        outcomes = [_passes(limiter, "k1") for limiter in (first, second, first, second)]
        assert outcomes == [True, True, True, False]
        with pytest.raises(RateLimited) as refused:
            second.check("k1")
        assert refused.value.code == "rate_limited"
        assert 0 < refused.value.retry_after_s <= 1.0  # one token a second
        assert refused.value.to_dict()["retry_after_s"] == refused.value.retry_after_s
        assert _passes(first, "k2")  # another key has its own budget
        wait_until(lambda: _passes(first, "k1"), timeout_s=3, message="the bucket never refilled")
    finally:
        first.close()
        second.close()


def test_a_key_of_its_own_rate_overrides_the_limiter(redis_url, prefix):
    limiter = RateLimiter(redis_url, per_min=600, burst=60, prefix=prefix)
    try:
        # 2 a minute: its burst is capped at one minute's worth
        assert [_passes_at(limiter, "slow", 2) for _ in range(3)] == [True, True, False]
        with pytest.raises(RateLimited) as refused:
            limiter.check("slow", per_min=2)
        assert 25 < refused.value.retry_after_s <= 30  # a token every 30 s
        assert all(_passes_at(limiter, "vip", 0) for _ in range(100))  # 0: unlimited
    finally:
        limiter.close()


def _passes_at(limiter: RateLimiter, key_id: str, per_min: float) -> bool:
    try:
        limiter.check(key_id, per_min=per_min)
    except RateLimited:
        return False
    return True


def test_off_when_rate_is_zero(redis_url, prefix):
    limiter = RateLimiter(redis_url, per_min=0, burst=1, prefix=prefix)
    try:
        assert all(_passes(limiter, "k") for _ in range(50))
    finally:
        limiter.close()


def test_async_check_takes_from_the_same_bucket(redis_url, prefix):
    limiter = RateLimiter(redis_url, per_min=1, burst=2, prefix=prefix)

    async def three() -> list[bool]:
        seen = []
        for _ in range(3):
            try:
                await limiter.acheck("k")
                seen.append(True)
            except RateLimited:
                seen.append(False)
        await limiter.aclose()
        return seen

    assert asyncio.run(three()) == [True, True, False]


_HAMMER = """
import sys
from redis import Redis
from api.ratelimit import RateLimiter
from modq.errors import RateLimited
limiter = RateLimiter(sys.argv[1], per_min=0.001, burst=25, prefix=sys.argv[2])
signal = Redis.from_url(sys.argv[1])
signal.incr(sys.argv[2] + "ready")
assert signal.blpop([sys.argv[2] + "go"], timeout=30)  # all start together
signal.close()
passed = 0
for _ in range(40):
    try:
        limiter.check("shared")
        passed += 1
    except RateLimited:
        pass
limiter.close()
print(passed)
"""


def test_processes_racing_never_exceed_the_burst(redis_url, prefix):
    """Three processes, 40 tries each, released together: exactly the burst passes (the
    script takes a token atomically)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", _HAMMER, redis_url, prefix],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    signal = Redis.from_url(redis_url)
    wait_until(
        lambda: int(signal.get(prefix + "ready") or 0) == 3,
        timeout_s=60,
        message="the processes did not start",
    )
    signal.rpush(prefix + "go", 1, 2, 3)
    signal.close()
    passed = [int(run.communicate(timeout=60)[0]) for run in runs]
    assert sum(passed) == 25, passed


def test_redis_down_is_a_typed_error(prefix):
    limiter = RateLimiter("redis://127.0.0.1:1/0", per_min=60, burst=1, prefix=prefix)
    try:
        with pytest.raises(StorageUnavailable, match="rate limiter unreachable"):
            limiter.check("k")
    finally:
        limiter.close()


def test_the_server_answers_429_with_retry_after(redis_url, prefix, tmp_path):
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    migrations.upgrade(url)
    repository = ApiKeyRepository(make_engine(url))
    _, key = repository.create("chatty", ["normal"])
    _, other = repository.create("quiet", ["normal"])
    limiter = RateLimiter(redis_url, per_min=6, burst=2, prefix=prefix)  # a token every 10 s
    app = keys_app(limiter)
    app.state.key_authenticator = KeyAuthenticator(repository, cache_s=5)
    with serving(app) as base:
        assert [call(f"{base}/whoami", key=key)[0] for _ in range(2)] == [200, 200]
        started = time.monotonic()
        status, headers, body = call(f"{base}/whoami", key=key)
        assert status == 429 and body["code"] == "rate_limited"
        retry_after = int(headers["retry-after"])
        assert 9 <= retry_after + (time.monotonic() - started) <= 11
        assert call(f"{base}/whoami", key=other)[0] == 200
