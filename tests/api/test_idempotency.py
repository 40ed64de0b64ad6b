"""``api.idempotency.Replays`` against a real redis-server of the module's own."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from redis.asyncio import Redis

from api.idempotency import Claim, Replays
from cli.services import private_redis


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with private_redis() as url:
        yield url


def test_releasing_a_claim_never_deletes_a_record_written_over_it(redis_url: str) -> None:
    """An openai first attempt (written without NX) overwrites the record while an earlier
    attempt lets its claim go: the new attempt's claim stays."""

    async def scenario() -> None:
        replays = Replays(redis_url, answer_ttl_s=60, work_deadline_s=10)
        other = Redis.from_url(redis_url)
        claim = Claim("modq:api:once:retry:key:print", "print", attach=False)
        try:
            newer = json.dumps({"token": "new", "state": "running", "fingerprint": "print"})
            for _ in range(20):  # the release reads, the newer attempt writes, in that order
                await other.set(claim.record_key, json.dumps({"token": "old"}))
                await asyncio.gather(
                    replays._release(claim, "old"), other.set(claim.record_key, newer)
                )
                raw = await other.get(claim.record_key)
                assert raw is not None and json.loads(raw)["token"] == "new"
            await replays._release(claim, "new")  # its own claim: released
            assert await other.get(claim.record_key) is None
        finally:
            await other.aclose()
            await replays.aclose()

    asyncio.run(scenario())
