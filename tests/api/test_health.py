"""/healthz, /readyz and /metrics on a live uvicorn with a real worker behind it."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from redis import Redis

from modq import heartbeat
from tests.api.conftest import ApiServer
from tests.workers import WorkerHandle

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


def test_a_worker_that_cannot_answer_a_broadcast_is_still_ready(
    api_server: ApiServer, api_worker: WorkerHandle
) -> None:
    """A worker that misses a broadcast (here stopped outright, the extreme of busy: it answers
    nothing) is still ready while its last heartbeat is younger than STALE_S. Before, /readyz
    asked a 0.5 s broadcast and said 503 for it (29% of a burst under load)."""
    with api_server.client() as client:
        assert client.get("/readyz").status_code == 200
        os.killpg(api_worker.process.pid, signal.SIGSTOP)
        try:
            time.sleep(0.6)  # past the API's cached answer (0.5 s): the next one is fresh
            ready = client.get("/readyz")
        finally:
            os.killpg(api_worker.process.pid, signal.SIGCONT)
    assert ready.status_code == 200, ready.text
    assert ready.json()["workers_ready"] >= 1


def test_readiness_counts_fresh_serving_beats_only(redis_url: str) -> None:
    """The heartbeat reader on a real Redis (a database of the session's own redis-server
    that no worker uses): stale beats are not counted, very old or unreadable ones are
    dropped, and a worker whose model breaker is open without a fallback is alive but not
    serving."""
    redis = Redis.from_url(redis_url, db=13)
    try:
        redis.delete(heartbeat.KEY)
        heartbeat.beat(redis, "serving@a", {"model_loaded": True, "model_breaker": "closed"})
        heartbeat.beat(
            redis,
            "fallback@b",
            {"model_loaded": True, "model_breaker": "open", "model_fallback": True},
        )
        heartbeat.beat(
            redis,
            "broken@c",
            {"model_loaded": True, "model_breaker": "open", "model_fallback": False},
        )
        heartbeat.beat(redis, "loading@d", {"model_loaded": False})
        now_s = heartbeat.redis_now_s(redis)
        old = {"model_loaded": True, "model_breaker": "closed"}
        redis.hset(
            heartbeat.KEY, "stale@e", json.dumps({**old, "at_s": now_s - 10 * heartbeat.STALE_S})
        )
        redis.hset(
            heartbeat.KEY, "gone@f", json.dumps({**old, "at_s": now_s - 2 * heartbeat.FORGET_S})
        )
        redis.hset(heartbeat.KEY, "garbage@g", b"not json")

        pulse = heartbeat.read(redis)

        assert pulse == heartbeat.Pulse(alive=4, serving=2)
        left = {name.decode() for name in redis.hkeys(heartbeat.KEY)}
        assert left == {"serving@a", "fallback@b", "broken@c", "loading@d", "stale@e"}
        heartbeat.forget(redis, "serving@a")
        assert heartbeat.read(redis) == heartbeat.Pulse(alive=3, serving=1)
    finally:
        redis.delete(heartbeat.KEY)
        redis.close()
