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


def _metric(client: httpx.Client, name: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    raise AssertionError(f"no {name} in /metrics")


@pytest.mark.slow
@pytest.mark.integration
def test_a_flood_key_is_held_at_its_share_while_another_key_is_served(
    urgent_only: ApiServer, api_database_url: str
) -> None:
    """The flood goes on (each thread sends again as soon as it is answered) until the victim
    is done, however long that takes: the victim is served beside it, never after it."""
    flood_key, victim_key = make_key(api_database_url), make_key(api_database_url)
    flood_done = threading.Event()

    def flood_loop(n: int) -> list[httpx.Response]:
        answers = []
        with urgent_only.client(flood_key) as client:
            while not flood_done.is_set():
                body = {"content": f"flood {n}", "priority": "normal", "timeout_s": 5}
                answers.append(client.post("/v1/moderate", json=body))
        return answers

    with ThreadPoolExecutor(6) as pool:
        flood = [pool.submit(flood_loop, n) for n in range(6)]
        try:
            with urgent_only.client(victim_key) as client:
                # while the flood key holds its 2 slots and 4 of its requests wait in the API
                wait_until(
                    lambda: _metric(client, "modq_api_fair_waiting") == 4.0,
                    timeout_s=15,
                    message="the flood's requests past its share did not wait",
                )
                served = [
                    client.post(
                        "/v1/moderate", json={"content": f"victim {n}", "priority": "urgent"}
                    )
                    for n in range(3)
                ]
                items = [
                    {"content_id": f"victim-item-{n}", "content": f"item {n}"} for n in range(5)
                ]
                batch = client.post(
                    "/v1/moderate/batch", json={"items": items, "priority": "urgent"}
                )
                assert not any(f.done() for f in flood)  # the flood was still going
                job = client.get(f"/v1/jobs/{batch.json()['job_id']}")
        finally:
            flood_done.set()
            responses = [r for f in flood for r in f.result()]
    assert [r.status_code for r in served] == [200, 200, 200], [r.text for r in served]
    assert batch.status_code == 200, batch.text
    sent_ids = [item["content_id"] for item in items]
    assert [r["content_id"] for r in batch.json()["results"]] == sent_ids
    assert job.status_code == 200 and job.json()["kind"] == "batch", job.text
    assert job.json()["status"] == "succeeded"
    assert [r["content_id"] for r in job.json()["result"]] == sent_ids
    codes = {r.json()["code"] for r in responses}
    # enqueued ones (their jobs wait on `normal`, which no worker drains): 503 past the
    # deadline; those past the key's share: 429, never enqueued
    assert codes == {"deadline_exceeded", "rate_limited"}, codes


@pytest.mark.slow
@pytest.mark.integration
def test_a_deduplicated_request_past_its_keys_share_is_refused_within_its_deadline(
    urgent_only: ApiServer, api_database_url: str
) -> None:
    """With an Idempotency-Key, or the openai client's first attempt (``X-Stainless-Retry-
    Count: 0``), a request past its key's share is 429 at its own deadline, never enqueued
    later (it waited for a slot as long as claimed work may wait for its result)."""
    key = make_key(api_database_url)

    def hold(n: int) -> httpx.Response:
        with urgent_only.client(key) as client:
            body = {"content": f"hold {n}", "priority": "normal", "timeout_s": 20}
            return client.post("/v1/moderate", json=body)

    with ThreadPoolExecutor(2) as pool:
        holders = [pool.submit(hold, n) for n in range(2)]  # the key's 2 slots, for 20 s
        with urgent_only.client(key) as client:
            wait_until(
                lambda: _metric(client, "modq_api_fair_in_flight") == 2.0,
                timeout_s=15,
                message="the holders never took the key's slots",
            )
            refused = [
                client.post(
                    "/v1/moderate",
                    json={"content": "once", "priority": "urgent", "timeout_s": 2},
                    headers=headers,
                )
                for headers in ({"Idempotency-Key": "once-1"}, {"X-Stainless-Retry-Count": "0"})
            ]
            assert not any(h.done() for h in holders), "the holders let their slots go first"
            waiting = _metric(client, "modq_api_fair_waiting")
    assert [r.status_code for r in refused] == [429, 429], [r.text for r in refused]
    assert {r.json()["code"] for r in refused} == {"rate_limited"}
    assert waiting == 0.0  # nothing left waiting for the key's slot, to be enqueued later
    assert [h.result().json()["code"] for h in holders] == ["deadline_exceeded"] * 2


@pytest.mark.slow
@pytest.mark.integration
def test_a_batch_refused_midway_sends_no_more_and_its_job_says_what_was_never_sent(
    urgent_only: ApiServer, api_database_url: str
) -> None:
    """3 chunks, 2 slots: the first two are sent (on `normal`, never drained), the third is
    refused at the caller's deadline (429). Nothing of the batch is left waiting to be sent,
    and ``GET /v1/jobs/{batch}`` says it failed, naming the part never sent."""
    key = make_key(api_database_url)
    items = [{"content_id": f"part-{n}", "content": f"item {n}"} for n in range(6)]
    body = {"items": items, "priority": "normal", "timeout_s": 2}
    with urgent_only.client(key) as client:
        refused = client.post("/v1/moderate/batch", json=body, headers={"Idempotency-Key": "b1"})
        waiting = _metric(client, "modq_api_fair_waiting")
        assert refused.status_code == 429, refused.text
        job = client.get(f"/v1/jobs/{refused.json()['job_id']}")
    assert waiting == 0.0
    assert job.status_code == 200 and job.json()["kind"] == "batch", job.text
    assert job.json()["status"] == "failed"
    assert job.json()["error"]["code"] == "rate_limited"
    assert "1 of 3 parts never sent" in job.json()["error"]["detail"]
