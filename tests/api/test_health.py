"""/healthz, /readyz and /metrics on a live uvicorn with a real worker behind it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.conftest import ApiServer

pytestmark = pytest.mark.integration


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one Prometheus sample in the text format (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    assert wanted  # labels given
    return 0.0


def test_healthz_and_readyz_need_no_key(api_server: ApiServer) -> None:
    with api_server.client() as client:
        health = client.get("/healthz")
        ready = client.get("/readyz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["checks"] == {"broker": "ok", "database": "ok", "workers": "ok"}
    assert body["workers_ready"] >= 1


def test_metrics_count_requests_by_route_and_status(api_server: ApiServer, api_key: str) -> None:
    route = "/v1/jobs/{job_id}"
    with api_server.client(api_key) as client:
        before = client.get("/metrics").text
        for _ in range(3):
            assert client.get("/v1/jobs/missing").status_code == 404
        after = client.get("/metrics").text
    labels = {"route": route, "method": "GET", "status": "404"}
    assert (
        _sample(after, "modq_api_requests_total", **labels)
        - _sample(before, "modq_api_requests_total", **labels)
        == 3
    )
    count = "modq_api_request_duration_seconds_count"
    assert _sample(after, count, route=route, method="GET") >= 3
    assert "/v1/jobs/missing" not in after  # templates, never raw paths


def test_the_api_process_loads_no_model_runtime(api_server: ApiServer, api_key: str) -> None:
    """After serving moderation, the API process has mapped neither ONNX Runtime nor torch."""
    with api_server.client(api_key) as client:
        assert client.post("/v1/moderate", json={"content": "hello"}).status_code == 200
    maps = Path(f"/proc/{api_server.process.pid}/maps").read_text()
    assert "onnxruntime" not in maps and "libtorch" not in maps


@pytest.mark.parametrize(
    ("stats", "serves"),
    [
        ({"model_loaded": True, "model_breaker": "closed"}, True),
        ({"model_loaded": True, "model_breaker": "half_open"}, True),
        ({"model_loaded": True, "model_breaker": "open", "model_fallback": False}, False),
        ({"model_loaded": True, "model_breaker": "open", "model_fallback": True}, True),
        ({"model_loaded": False, "model_breaker": "closed"}, False),
        ({"model_loaded": True}, True),  # a worker of an older modq: no breaker field
    ],
)
def test_readyz_counts_a_worker_whose_model_breaker_is_open_only_with_a_fallback(
    stats: dict[str, object], serves: bool
) -> None:
    from api.readiness import _serves

    assert _serves(stats) is serves
