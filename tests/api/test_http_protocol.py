"""The HTTP layer under clients that misbehave, against a real ``modq api`` (uvicorn) with no
worker behind it: raw sockets that trickle a header or a body are answered 408 and dropped,
an unparsable request is a 400 problem, a body that is not JSON is 415, HEAD works on the
probes, and /metrics keeps its method label bounded."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from api.problems import PROBLEM_JSON
from tests.api.conftest import ApiServer, api_env, make_key, running_api

pytestmark = pytest.mark.integration

TRICKLE_FOR_S = 60  # far past the 1 s bounds below: only a dropped connection ends sooner


@pytest.fixture(scope="module")
def strict_api(
    api_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    """An API (no worker behind it: another Redis database) with 1 s header and body bounds."""
    base = os.environ["MODQ_REDIS_URL"].rsplit("/", 1)[0]
    env = api_env(
        api_database_url,
        MODQ_REDIS_URL=f"{base}/4",
        MODQ_API_HEADER_TIMEOUT_S="1",
        MODQ_API_BODY_TIMEOUT_S="1",
    )
    with running_api(env, log_dir=Path(tmp_path_factory.mktemp("api-strict"))) as server:
        yield server


def _connect(server: ApiServer) -> socket.socket:
    address = urlsplit(server.url)
    return socket.create_connection((address.hostname, address.port), timeout=10)


def _trickle(connection: socket.socket, data: bytes) -> bytes:
    """Send ``data`` one byte every 0.1 s, up to TRICKLE_FOR_S, until the server answers and
    closes; what it answered (``b""`` if it never did)."""
    deadline = time.monotonic() + TRICKLE_FOR_S
    connection.settimeout(0.1)
    answer = b""
    for byte in data:
        if time.monotonic() > deadline:
            break
        try:
            connection.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            break
        try:
            chunk = connection.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        answer += chunk
    connection.settimeout(5)
    try:
        while chunk := connection.recv(65536):
            answer += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return answer


def _status_and_problem(answer: bytes) -> tuple[int, dict[str, object], str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = "\n".join(lines[1:]).lower()
    assert f"content-type: {PROBLEM_JSON}" in headers, answer[:500]
    return int(lines[0].split()[1]), json.loads(body), headers


def test_a_header_trickled_byte_by_byte_is_dropped(strict_api: ApiServer) -> None:
    endless_header = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 10_000
    with _connect(strict_api) as connection:
        answer = _trickle(connection, endless_header)
    status, problem, _ = _status_and_problem(answer)
    assert (status, problem["code"]) == (408, "request_timeout")


def test_a_connection_that_sends_nothing_is_dropped(strict_api: ApiServer) -> None:
    with _connect(strict_api) as connection:
        connection.settimeout(TRICKLE_FOR_S)
        answer = connection.recv(65536)
        assert connection.recv(65536) == b""  # closed
    assert _status_and_problem(answer)[0] == 408


def test_a_body_trickled_byte_by_byte_is_dropped(strict_api: ApiServer) -> None:
    body = json.dumps({"content": "x" * 5_000}).encode()
    head = (
        "POST /v1/moderate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with _connect(strict_api) as connection:
        connection.sendall(head)
        answer = _trickle(connection, body)
    status, problem, headers = _status_and_problem(answer)
    assert (status, problem["code"]) == (408, "request_timeout")
    assert "connection: close" in headers


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"NOT HTTP AT ALL\r\n\r\n",
        # no end in sight past 16 KiB: refused without waiting for the rest
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000,
    ],
    ids=["garbage", "header-over-16-KiB"],
)
def test_a_request_uvicorn_cannot_parse_is_a_400_problem(
    strict_api: ApiServer, request_bytes: bytes
) -> None:
    with _connect(strict_api) as connection:
        connection.sendall(request_bytes)
        answer = b""
        while chunk := connection.recv(65536):  # then it closes
            answer += chunk
    status, problem, _ = _status_and_problem(answer)
    assert (status, problem["code"]) == (400, "bad_request")


def _one_response(connection: socket.socket) -> bytes:
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += connection.recv(65536)
    head, _, body = answer.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += connection.recv(65536)
    return head


@pytest.mark.slow
def test_a_kept_alive_connection_serves_request_after_request(strict_api: ApiServer) -> None:
    """The header bound starts with each request's first byte, not with the connection: one
    socket, idle longer than the bound (shorter than keep-alive, 5 s) between requests."""
    with _connect(strict_api) as connection:
        for _ in range(3):
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _one_response(connection).startswith(b"HTTP/1.1 200")
            time.sleep(1.5)  # the scenario itself: an idle kept-alive connection


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"],
)
def test_a_body_that_is_not_json_is_415(
    strict_api: ApiServer, api_database_url: str, content_type: str | None
) -> None:
    key = make_key(api_database_url)
    headers = {"Content-Type": content_type} if content_type else {}
    with strict_api.client(key) as client:
        response = client.post("/v1/moderate", content=b'{"content": "x"}', headers=headers)
        # JSON with a +json type or a UTF-8 charset is JSON (422 below: "" is empty content)
        fine = client.post(
            "/v1/moderate",
            content=b'{"content": ""}',
            headers={"Content-Type": "application/merge-patch+json; charset=UTF-8"},
        )
        unknown = client.post("/v1/nowhere", content=b"x", headers=headers)
    assert response.status_code == 415, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.json()["code"] == "unsupported_media_type"
    assert fine.status_code == 422
    assert unknown.status_code == 404  # the route is found first


def test_head_answers_on_the_probes(strict_api: ApiServer) -> None:
    with strict_api.client() as client:
        for path in ("/healthz", "/metrics"):
            response = client.head(path)
            assert response.status_code == 200, path
            assert response.content == b""
        assert client.head("/readyz").status_code == 503  # no worker here
        refused = client.head("/v1/moderate")
    assert refused.status_code == 405


def test_the_method_label_of_metrics_stays_bounded(strict_api: ApiServer) -> None:
    with strict_api.client() as client:
        for method in ("BREW", "PROPFIND", "X-ANYTHING-1"):
            assert client.request(method, "/healthz").status_code == 405
        text = client.get("/metrics").text
    assert 'method="other"' in text
    for method in ("BREW", "PROPFIND", "X-ANYTHING-1"):
        assert method not in text


def test_every_protocol_error_is_a_problem(strict_api: ApiServer, api_database_url: str) -> None:
    key = make_key(api_database_url)
    with strict_api.client(key) as client:
        responses = {
            404: client.get("/nowhere"),
            405: client.put("/healthz", json={}),
            400: client.post(
                "/v1/moderate", content=b"{", headers={"Content-Type": "application/json"}
            ),
            413: client.post(
                "/v1/moderate",
                content=b"x" * 9_000_000,
                headers={"Content-Type": "application/json"},
            ),
            415: client.post("/v1/moderate", content=b"{}"),
            422: client.post("/v1/moderate", json={"content": 1}),
            401: client.post("/v1/moderate", json={"content": "x"}, headers={"Authorization": ""}),
        }
    for status, response in responses.items():
        assert response.status_code == status, (status, response.text)
        assert response.headers["content-type"].startswith(PROBLEM_JSON), status
        assert response.json()["status"] == status


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/moderate", {"content": ""}),
        ("/v1/moderate", {"content": "   "}),
        ("/v1/moderate/batch", {"items": [{"content": "fine"}, {"content": ""}]}),
        ("/v1/moderations", {"input": ["fine", ""]}),
        ("/v1/moderations", {"input": ""}),
        ("/v1/reviews", {"content_id": "c1", "label": "maybe"}),
    ],
)
def test_bad_content_is_422_even_with_no_worker(
    strict_api: ApiServer, api_database_url: str, path: str, body: dict[str, object]
) -> None:
    """Validation comes before readiness: no worker here, yet the answer is about the input."""
    key = make_key(api_database_url)
    with strict_api.client(key) as client:
        response = client.post(path, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["code"] in ("invalid_content", "invalid_review")


def test_openapi_states_the_bounds_of_content(strict_api: ApiServer) -> None:
    with strict_api.client() as client:
        schemas = client.get("/openapi.json").json()["components"]["schemas"]
    for name, field in (("Item", "content"), ("ModerateBody", "content"), ("TextPart", "text")):
        prop = schemas[name]["properties"][field]
        assert (prop["minLength"], prop["maxLength"]) == (1, 20_000), name
