"""Every error answers one shape (RFC 9457 problem+json) with the status of the one table;
no bad input gets a 500. Against a live uvicorn (and a second one with no worker behind it)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.problems import DOCUMENTED_STATUSES, PROBLEM_JSON, STATUS_BY_ERROR
from modq.errors import ModerationError
from tests.api.conftest import ApiServer, api_env, make_key, running_api

pytestmark = pytest.mark.integration


def _assert_problem(response, status: int, code: str | None = None) -> dict[str, object]:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:modq:error:")
    assert body["title"] and body["detail"]
    if code is not None:
        assert body["code"] == code
    return body


def test_the_table_covers_only_documented_statuses_and_every_error_class() -> None:
    statuses = {status for _, status in STATUS_BY_ERROR}
    assert statuses - {500} <= set(DOCUMENTED_STATUSES)
    import modq.errors as errors

    kinds = [
        v for v in vars(errors).values() if isinstance(v, type) and issubclass(v, ModerationError)
    ]
    mapped = [kind for kind in kinds if any(issubclass(kind, k) for k, _ in STATUS_BY_ERROR)]
    # errors no request can cause on the API's side may fall to 500; the rest are mapped
    unmapped = {k.__name__ for k in kinds} - {k.__name__ for k in mapped}
    assert unmapped <= {
        "ModerationError",
        "PromotionError",
        "ExperimentError",
        "UnknownExperiment",
        "PolicyError",
    }, unmapped


def test_no_key_or_a_bad_key_is_401_with_a_bearer_challenge(api_server: ApiServer) -> None:
    with api_server.client() as client:
        missing = client.post("/v1/moderate", json={"content": "x"})
    with api_server.client("modq_nope_nope") as client:
        unknown = client.post("/v1/moderate", json={"content": "x"})
    for response in (missing, unknown):
        _assert_problem(response, 401, "unauthenticated")
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_priority_or_scope_the_key_lacks_is_403_not_downgraded(
    api_server: ApiServer, api_database_url: str
) -> None:
    bulk_only = make_key(api_database_url, ("bulk",), may_review=False)
    with api_server.client(bulk_only) as client:
        urgent = client.post("/v1/moderate", json={"content": "x", "priority": "urgent"})
        default = client.post("/v1/moderations", json={"input": "x"})  # normal
        job = client.post("/v1/jobs", json={"content": "x", "priority": "normal"})
        review = client.post("/v1/reviews", json={"content_id": "c", "label": "safe"})
        allowed = client.post("/v1/jobs", json={"content": "x", "priority": "bulk"})
    for response in (urgent, default, job, review):
        _assert_problem(response, 403, "forbidden")
    assert allowed.status_code == 202


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"content": "   "}, "invalid_content", "content"),
        ({"content": "x" * 20_001}, "invalid_content", "content"),
        ({"content": "x", "content_type": "image"}, "unsupported_content_type", "content_type"),
        ({"content": "\ud800"}, "invalid_content", "content"),
        ({"content": 5}, "invalid_request", None),
        ({"content": "x", "priority": "asap"}, "invalid_request", None),
        ({"content": "x", "surprise": 1}, "invalid_request", None),
        ({}, "invalid_request", None),
    ],
)
def test_bad_content_is_422(
    api_server: ApiServer, api_key: str, body: dict[str, object], code: str, field: str | None
) -> None:
    with api_server.client(api_key) as client:  # ASCII JSON: a lone surrogate as \ud800
        response = client.post(
            "/v1/moderate", content=json.dumps(body), headers={"content-type": "application/json"}
        )
    problem = _assert_problem(response, 422, code)
    if field is not None:
        assert problem["field"] == field
    assert "\ud800" not in response.text and "xxxxxxxx" not in response.text  # input not echoed


def test_malformed_json_is_400(api_server: ApiServer, api_key: str) -> None:
    with api_server.client(api_key) as client:
        response = client.post(
            "/v1/moderate", content=b'{"content": ', headers={"content-type": "application/json"}
        )
    _assert_problem(response, 400, "malformed_json")


def test_bodies_and_batches_past_their_limits_are_413(api_server: ApiServer, api_key: str) -> None:
    too_big = b'{"content": "' + b"a" * 8_400_000 + b'"}'

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(too_big), 1 << 20):
            yield too_big[start : start + (1 << 20)]

    with api_server.client(api_key) as client:
        declared = client.post(
            "/v1/moderate", content=too_big, headers={"content-type": "application/json"}
        )
        chunked = client.post(
            "/v1/moderate", content=chunks(), headers={"content-type": "application/json"}
        )
        items = [{"content": "x"}] * 1_001
        batch = client.post("/v1/moderate/batch", json={"items": items})
    _assert_problem(declared, 413, "too_large")
    _assert_problem(chunked, 413, "too_large")
    assert _assert_problem(batch, 413, "too_large")["limit"] == 1_000


def test_unknown_routes_and_methods_are_problems(api_server: ApiServer, api_key: str) -> None:
    with api_server.client(api_key) as client:
        _assert_problem(client.get("/v1/nothing-here"), 404, "not_found")
        _assert_problem(client.get("/v1/moderate"), 405, "method_not_allowed")


def test_a_missed_deadline_is_503_with_the_job_id_and_the_job_goes_on(
    api_server: ApiServer, api_key: str
) -> None:
    from tests.polling import wait_until

    with api_server.client(api_key) as client:
        response = client.post(
            "/v1/moderate", json={"content": "slow enough", "timeout_s": 0.000001}
        )
        problem = _assert_problem(response, 503, "deadline_exceeded")
        assert response.headers["retry-after"] == "1"
        job_id = problem["job_id"]
        wait_until(
            lambda: client.get(f"/v1/jobs/{job_id}").json()["status"] == "succeeded",
            timeout_s=30,
            message="the job did not finish after its request gave up",
        )


@pytest.fixture(scope="module")
def workerless_api(
    api_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    """An API whose broker (another Redis database) no worker listens on, with a tight rate
    and a bulk queue bounded at one item."""
    base = os.environ["MODQ_REDIS_URL"].rsplit("/", 1)[0]
    env = api_env(
        api_database_url,
        MODQ_REDIS_URL=f"{base}/3",
        MODQ_RATE_LIMIT_PER_MIN="60",
        MODQ_RATE_LIMIT_BURST="3",
        MODQ_MAX_QUEUE_DEPTH_BULK="1",
    )
    with running_api(env, log_dir=Path(tmp_path_factory.mktemp("api-noworker"))) as server:
        yield server


def test_no_worker_ready_is_503_with_retry_after(
    workerless_api: ApiServer, api_database_url: str
) -> None:
    key = make_key(api_database_url)
    with workerless_api.client(key) as client:
        sync = client.post("/v1/moderate", json={"content": "anyone there?"})
        ready = client.get("/readyz")
        queued = client.post("/v1/jobs", json={"content": "wait for a worker"})
    body = _assert_problem(sync, 503, "model_unavailable")
    assert sync.headers["retry-after"] == "1"
    assert "no worker" in str(body["detail"])
    readiness = _assert_problem(ready, 503, "not_ready")
    assert readiness["checks"]["workers"] != "ok"  # type: ignore[index]
    assert readiness["checks"]["broker"] == "ok"  # type: ignore[index]
    assert queued.status_code == 202  # async jobs wait on their queue


def test_past_its_rate_a_key_gets_429_with_retry_after(
    workerless_api: ApiServer, api_database_url: str
) -> None:
    key = make_key(api_database_url)
    with workerless_api.client(key) as client:
        statuses = [client.get("/v1/jobs/none").status_code for _ in range(5)]
        limited = client.get("/v1/jobs/none")
    assert statuses[:3] == [404, 404, 404]
    body = _assert_problem(limited, 429, "rate_limited")
    assert int(limited.headers["retry-after"]) >= 1
    assert body["retry_after_s"] > 0


def test_a_full_queue_is_503_overloaded_with_retry_after(
    workerless_api: ApiServer, api_database_url: str
) -> None:
    key = make_key(api_database_url)
    with workerless_api.client(key) as client:
        responses = [
            client.post("/v1/jobs", json={"content": "x", "priority": "bulk"}) for _ in range(3)
        ]
    assert responses[0].status_code == 202
    refused = [r for r in responses if r.status_code != 202]
    assert refused, [r.status_code for r in responses]
    for response in refused:
        body = _assert_problem(response, 503, "overloaded")
        assert body["queue"] == "bulk"
        assert response.headers["retry-after"] == "1"
