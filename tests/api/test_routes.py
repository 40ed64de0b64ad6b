"""The native API against a live uvicorn and a real worker: sync, batch, async jobs, reviews."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from modq.categories import CANONICAL_CATEGORIES
from modq.webhooks import verify
from tests.api.conftest import WEBHOOK_SECRET, ApiServer, make_key
from tests.polling import wait_until

pytestmark = pytest.mark.integration


def test_moderate_returns_the_full_result(api_server: ApiServer, api_key: str) -> None:
    with api_server.client(api_key) as client:
        response = client.post(
            "/v1/moderate",
            json={"content_id": "r-1", "content": "you are an idiot", "priority": "urgent"},
        )
    assert response.status_code == 200, response.text
    body = response.json()
    result = body["result"]
    assert result["content_id"] == "r-1"
    assert result["decision"] in ("allow", "flag", "remove")
    assert set(result["scores"]) | set(result["unscored_categories"]) == set(CANONICAL_CATEGORIES)
    for field in ("model_name", "model_version", "policy_version", "variant", "tripped"):
        assert field in result
    assert result["priority"] == "urgent"
    assert result["language"] == "en"
    assert result["tripped"]  # an insult: flagged, its span the whole (one-window) text
    assert all(r["span"] == [0, len("you are an idiot")] for r in result["tripped"])
    assert body["job_id"]


def test_batch_answers_each_item_in_order(api_server: ApiServer, api_key: str) -> None:
    items = [{"content_id": f"b-{i}", "content": f"batch text number {i}"} for i in range(5)]
    with api_server.client(api_key) as client:
        response = client.post("/v1/moderate/batch", json={"items": items})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["content_id"] for r in results] == [f"b-{i}" for i in range(5)]
    assert {r["priority"] for r in results} == {"bulk"}


def test_a_job_is_accepted_then_found_done(api_server: ApiServer, api_key: str) -> None:
    with api_server.client(api_key) as client:
        accepted = client.post("/v1/jobs", json={"content": "an async job", "priority": "bulk"})
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["job_id"]
        assert accepted.headers["location"] == f"/v1/jobs/{job_id}"

        def done() -> dict[str, object] | None:
            body = client.get(f"/v1/jobs/{job_id}").json()
            return body if body["status"] == "succeeded" else None

        body = wait_until(done, timeout_s=30, message="the job never succeeded")
    assert body["result"]["priority"] == "bulk"
    assert body["kind"] == "moderate"


def test_a_job_is_visible_only_to_its_key(
    api_server: ApiServer, api_key: str, api_database_url: str
) -> None:
    other = make_key(api_database_url, ("normal",), may_review=False)
    with api_server.client(api_key) as client:
        job_id = client.post("/v1/jobs", json={"content": "mine"}).json()["job_id"]
    with api_server.client(other) as client:
        response = client.get(f"/v1/jobs/{job_id}")
        unknown = client.get("/v1/jobs/no-such-job")
    assert response.status_code == 404
    assert response.json()["code"] == "unknown_job"
    assert unknown.status_code == 404


def test_a_review_is_stored_for_decided_content(api_server: ApiServer, api_key: str) -> None:
    with api_server.client(api_key) as client:
        decided = client.post("/v1/moderate", json={"content_id": "rev-1", "content": "hello"})
        assert decided.status_code == 200, decided.text
        stored = client.post("/v1/reviews", json={"content_id": "rev-1", "label": "safe"})
        unknown = client.post("/v1/reviews", json={"content_id": "never-seen", "label": "safe"})
    assert stored.status_code == 201, stored.text
    assert stored.json()["content_id"] == "rev-1"
    assert stored.json()["new"] >= 1
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "unknown_content"


def test_many_concurrent_requests_each_get_their_own_result(
    api_server: ApiServer, api_database_url: str
) -> None:
    """One pub/sub connection per API process serves every waiting request: 80 at once, from
    20 keys (a key has MODQ_API_KEY_MAX_IN_FLIGHT jobs in flight; the rest wait their turn)."""
    from concurrent.futures import ThreadPoolExecutor

    keys = [make_key(api_database_url, ("normal",), may_review=False) for _ in range(20)]

    def call(index: int) -> tuple[int, str]:
        with api_server.client(keys[index % len(keys)]) as client:
            response = client.post(
                "/v1/moderate",
                json={"content_id": f"cc-{index}", "content": f"concurrent text {index}"},
            )
        assert response.status_code == 200, response.text
        return index, response.json()["result"]["content_id"]

    with ThreadPoolExecutor(max_workers=40) as pool:
        answers = list(pool.map(call, range(80)))
    assert all(content_id == f"cc-{index}" for index, content_id in answers)


def test_curl_moderates(api_server: ApiServer, api_key: str) -> None:
    """The README's curl call, verbatim in shape."""
    output = subprocess.run(
        [
            "curl",
            "-sS",
            "-X",
            "POST",
            f"{api_server.url}/v1/moderate",
            "-H",
            f"Authorization: Bearer {api_key}",
            "-H",
            "Content-Type: application/json",
            "-d",
            json.dumps({"content": "hello from curl"}),
            "-w",
            "\n%{http_code}",
        ],
        capture_output=True,
        check=True,
        timeout=60,
        text=True,
    ).stdout
    body, _, status = output.rpartition("\n")
    assert status == "200", output
    assert json.loads(body)["result"]["decision"] in ("allow", "flag", "remove")


@pytest.fixture
def receiver() -> Iterator[tuple[str, queue.Queue[tuple[dict[str, str], bytes]]]]:
    """A local HTTP endpoint that records each POST (headers, body) and answers 204."""
    received: queue.Queue[tuple[dict[str, str], bytes]] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.put(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def test_a_job_with_a_callback_url_is_delivered_signed(
    api_server: ApiServer,
    api_key: str,
    receiver: tuple[str, queue.Queue[tuple[dict[str, str], bytes]]],
) -> None:
    url, received = receiver
    with api_server.client(api_key) as client:
        accepted = client.post("/v1/jobs", json={"content": "call me back", "callback_url": url})
        refused = client.post(
            "/v1/jobs", json={"content": "x", "callback_url": "http://10.0.0.1/hook"}
        )
    assert accepted.status_code == 202, accepted.text
    assert refused.status_code == 422
    assert refused.json()["field"] == "callback_url"
    headers, body = received.get(timeout=30)
    assert verify(WEBHOOK_SECRET.encode(), body, headers["modq-signature"])
    delivered = json.loads(body)
    assert delivered["job_id"] == accepted.json()["job_id"]
    assert delivered["event"] == "job.succeeded"


def test_a_job_sent_twice_with_an_idempotency_key_is_enqueued_once(
    api_server: ApiServer, api_database_url: str
) -> None:
    key = make_key(api_database_url, ("bulk",), may_review=False)
    body = {"content": "sent twice by a retrying client", "priority": "bulk"}
    with api_server.client(key) as client:
        first, again = (
            client.post("/v1/jobs", json=body, headers={"Idempotency-Key": "job-1"})
            for _ in range(2)
        )
        other = client.post("/v1/jobs", json=body, headers={"Idempotency-Key": "job-2"})
    assert first.status_code == again.status_code == other.status_code == 202, first.text
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert other.json()["job_id"] != first.json()["job_id"]  # another key, another job
