"""Fair admission between API keys (``api.fairness``): the slots alone, then a real ``modq api``
with a real worker where one key floods and another is served."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx
import pytest

from api.fairness import KeySlots
from cli.services import private_redis, start_worker, stop_worker
from modq.errors import RateLimited
from tests.api.conftest import ApiServer, api_env, make_key, running_api
from tests.polling import wait_until

# --- the slots ----------------------------------------------------------------------------


def test_a_key_past_its_share_waits_while_another_key_is_admitted() -> None:
    async def scenario() -> None:
        slots = KeySlots(2)
        await slots.acquire("flood", 1)
        await slots.acquire("flood", 1)
        third = asyncio.create_task(slots.acquire("flood", 30))
        fourth = asyncio.create_task(slots.acquire("flood", 30))
        await asyncio.sleep(0)  # both are in the flood's line now
        assert slots.waiting("flood") == 2 and not third.done()
        await asyncio.wait_for(slots.acquire("victim", 0), 1)  # admitted at once
        slots.release("flood")  # the slot passes to the flood's first waiter, in order
        await asyncio.wait_for(third, 1)
        assert not fourth.done() and slots.held("flood") == 2
        with pytest.raises(RateLimited, match="its share"):
            await slots.acquire("flood", 0.01)  # its deadline passes in the line: 429
        fourth.cancel()
        with pytest.raises(asyncio.CancelledError):
            await fourth
        slots.release("flood")
        slots.release("flood")
        slots.release("victim")
        assert slots.held("flood") == 0 and slots.waiting() == 0

    asyncio.run(scenario())


# --- a real API: the flood key is held at its share, the victim is served -----------------


@pytest.fixture(scope="module")
def urgent_only(
    model_dir: Path, api_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    """A redis-server of this module's own, a worker that consumes only ``urgent`` (so jobs
    on ``normal`` stay queued: a flood that never drains) and ``modq api`` with 2 slots per
    key and batches sent in chunks of 2 items."""
    root = tmp_path_factory.mktemp("fairness")
    with private_redis() as redis_url:
        env = {
            "MODQ_REDIS_URL": redis_url,
            "MODQ_BROKER_URL": redis_url,
            "MODQ_RESULT_BACKEND_URL": redis_url,
            "MODQ_DATABASE_URL": api_database_url,
        }
        worker = start_worker(env, threads=4, log_path=root / "worker.log", queues="urgent")
        try:
            settings = {"MODQ_API_KEY_MAX_IN_FLIGHT": "2", "MODQ_API_BATCH_CHUNK_ITEMS": "2"}
            with running_api({**api_env(api_database_url), **env, **settings}, log_dir=root) as api:
                with api.client() as client:
                    wait_until(
                        lambda: client.get("/readyz").status_code == 200,
                        timeout_s=180,
                        message="the urgent worker never became ready",
                    )
                yield api
        finally:
            stop_worker(worker)


@pytest.mark.slow
@pytest.mark.integration
def test_a_flood_key_is_held_at_its_share_while_another_key_is_served(
    urgent_only: ApiServer, api_database_url: str
) -> None:
    flood_key, victim_key = make_key(api_database_url), make_key(api_database_url)
    flood_done = threading.Event()

    def flood_one(n: int) -> httpx.Response:
        with urgent_only.client(flood_key) as client:
            body = {"content": f"flood {n}", "priority": "normal", "timeout_s": 20}
            return client.post("/v1/moderate", json=body)

    with ThreadPoolExecutor(6) as pool:
        flood = [pool.submit(flood_one, n) for n in range(6)]
        try:
            with urgent_only.client(victim_key) as client:
                # while the flood key holds its 2 slots and 4 of its requests wait in the API
                wait_until(
                    lambda: "modq_api_fair_waiting 4.0" in client.get("/metrics").text,
                    timeout_s=15,
                    message="the flood's requests past its share did not wait",
                )
                served = [
                    client.post(
                        "/v1/moderate", json={"content": f"victim {n}", "priority": "urgent"}
                    )
                    for n in range(3)
                ]
                batch = client.post(
                    "/v1/moderate/batch",
                    json={
                        "items": [{"content": f"item {n}"} for n in range(5)],
                        "priority": "urgent",
                    },
                )
                assert not any(f.done() for f in flood)  # all served while the flood waits
                job = client.get(f"/v1/jobs/{batch.json()['job_id']}")
        finally:
            responses = [f.result() for f in flood]
            flood_done.set()
    assert [r.status_code for r in served] == [200, 200, 200], [r.text for r in served]
    assert batch.status_code == 200, batch.text
    assert [r["content_id"] for r in batch.json()["results"]] == [
        item["content_id"] for item in batch.json()["results"]
    ]
    assert len(batch.json()["results"]) == 5
    assert job.status_code == 200 and job.json()["kind"] == "batch", job.text
    assert job.json()["status"] == "succeeded" and len(job.json()["result"]) == 5
    codes = sorted(r.json()["code"] for r in responses)
    # 2 enqueued (their jobs wait on `normal`, which no worker drains): 503 past the deadline
    # with their job id; 4 never enqueued: 429, refused beyond the key's share
    assert codes == ["deadline_exceeded"] * 2 + ["rate_limited"] * 4, codes
