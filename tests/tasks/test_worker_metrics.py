"""A real worker's own /metrics and /healthz, scraped over HTTP after real jobs.

The worker runs on a redis-server this module starts for itself (on a port it keeps), so the
last test can stop that broker, see /healthz answer 503, start it again on the same port and
see the worker recover, without touching the session's Redis.
"""

from __future__ import annotations

import collections
import contextlib
import json
import shutil
import socket
import subprocess
import tempfile
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from prometheus_client.parser import text_string_to_metric_families

import migrations
from cli.services import free_port, redis_reachable, redis_server_binary, start_worker, stop_worker
from gpu_worker.manifest import ModelManifest
from modq.settings import get_settings
from policy.carried import policy_for_model
from tests.polling import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


class RedisServer:
    """A redis-server on a fixed loopback port that can be stopped and started again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.folder = tempfile.mkdtemp(prefix="modq-test-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        options = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", self.folder]
        self.process = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), *options],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: redis_reachable(self.url), timeout_s=10, message="redis never up")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class Stack:
    redis: RedisServer
    producer: Celery
    base_url: str

    def moderate(self, texts: list[str], priority: str = "normal") -> list[dict[str, Any]]:
        jobs = [
            self.producer.send_task(
                "modq.moderate",
                kwargs={
                    "content_id": f"m-{uuid.uuid4().hex[:8]}",
                    "content": t,
                    "priority": priority,
                },
                queue=priority,
            )
            for t in texts
        ]
        return [job.get(timeout=120) for job in jobs]

    def scrape(self) -> Samples:
        with urllib.request.urlopen(f"{self.base_url}/metrics", timeout=10) as response:
            text = response.read().decode()
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def get(self, path: str) -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(f"{self.base_url}{path}", timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples named ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return total(after, name, **labels) - total(before, name, **labels)


@pytest.fixture(scope="module")
def stack(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from tasks.app import app as worker_app

    root = tmp_path_factory.mktemp("worker-metrics")
    redis = RedisServer()
    redis.start()
    database_url = f"sqlite:///{root / 'results.db'}"
    migrations.upgrade(database_url)
    port = free_port()
    producer = Celery("modq-metrics-test", set_as_current=False)
    producer.conf.update(
        broker_url=redis.url,
        result_backend=redis.url,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        broker_transport_options=dict(worker_app.conf.broker_transport_options or {}),
    )
    if worker_app.conf.get("broker_transport"):  # modq's transport rings the idle worker
        producer.conf.broker_transport = worker_app.conf.broker_transport
    env = {
        "MODQ_REDIS_URL": redis.url,
        "MODQ_DATABASE_URL": database_url,
        "MODQ_WORKER_METRICS_PORT": str(port),
        "MODQ_MAX_WAIT_MS": "20",
        "PYTHONUNBUFFERED": "1",
    }
    log = root / "worker.log"
    worker = start_worker(env, threads=8, log_path=log)
    stack = Stack(redis, producer, f"http://127.0.0.1:{port}")
    try:

        def healthy() -> bool:
            assert worker.poll() is None, log.read_text()[-3000:]
            with contextlib.suppress(OSError):
                return stack.get("/healthz")[0] == 200
            return False

        wait_until(healthy, timeout_s=120, interval_s=0.3, message="worker never healthy")
        yield stack
    finally:
        stop_worker(worker)
        producer.close()
        redis.remove()


def test_counters_and_histograms_move_by_the_jobs_run(stack: Stack, model_dir: Path) -> None:
    from cache import normalize_content
    from gpu_worker.backends.onnx import OnnxBackend

    texts = [f"metrics job {i} {uuid.uuid4().hex} " + "word " * (i * 5) for i in range(6)]
    before = stack.scrape()
    results = stack.moderate(texts)
    duplicate = stack.moderate([texts[0]])  # scored already: the cache answers
    after = stack.scrape()

    assert duplicate[0]["cache_hit"] is True
    assert delta(before, after, "modq_worker_decisions_total") == 7
    served = collections.Counter(r["decision"] for r in results + duplicate)
    for decision, count in served.items():
        assert delta(before, after, "modq_worker_decisions_total", decision=decision) == count
    tripped = collections.Counter(c["category"] for r in results + duplicate for c in r["tripped"])
    for category, count in tripped.items():
        assert delta(before, after, "modq_worker_tripped_total", category=category) == count
    version, policy_version = results[0]["model_version"], results[0]["policy_version"]
    assert (
        delta(
            before,
            after,
            "modq_worker_decisions_total",
            model_version=version,
            policy_version=policy_version,
        )
        == 7
    )
    assert delta(before, after, "modq_worker_cache_hits_total") == 1
    assert delta(before, after, "modq_worker_cache_misses_total") == 6
    # six distinct texts reached the model as their windows (a batch's rows), in one or more
    # calls; the duplicate did not
    normalized = [normalize_content(t) for t in texts]
    plans = OnnxBackend(model_dir).windows(normalized)
    windows = [
        t[w.start : w.end] for t, p in zip(normalized, plans, strict=True) for w in p.windows
    ]
    rows = len(windows)
    assert rows > 6  # the longer texts are several windows
    # identical windows ("word word ...") in one batch run once (batcher de-duplication)
    assert len(set(windows)) <= delta(before, after, "modq_worker_batch_size_sum") <= rows
    calls = delta(before, after, "modq_worker_batch_size_count")
    assert 1 <= calls <= rows
    assert delta(before, after, "modq_worker_model_latency_seconds_count") == calls
    assert delta(before, after, "modq_worker_batch_padded_tokens_count") == calls
    real = delta(before, after, "modq_worker_real_tokens_total")
    assert real > 6 and delta(before, after, "modq_worker_batch_padded_tokens_sum") >= real
    assert (
        delta(before, after, "modq_worker_jobs_total", task="modq.moderate", state="SUCCESS") == 7
    )
    assert total(after, "modq_worker_jobs_in_flight") == 0
    # modq_stats reads the same counters /metrics shows
    (reply,) = stack.producer.control.broadcast("modq_stats", reply=True, timeout=5)
    (stats,) = reply.values()
    now = stack.scrape()
    assert stats["cache_hits"] == total(now, "modq_worker_cache_hits_total")
    assert stats["batches"] == total(now, "modq_worker_batch_size_count")


def test_model_info_names_the_served_model_and_policy(stack: Stack, model_dir: Path) -> None:
    manifest = ModelManifest.read(model_dir)
    samples = stack.scrape()
    (reply,) = stack.producer.control.broadcast("modq_stats", reply=True, timeout=5)
    (stats,) = reply.values()
    (labels,) = [dict(ls) for (n, ls), v in samples.items() if n == "modq_worker_model_info"]
    assert labels == {
        "name": manifest.name,
        "version": manifest.version,
        "device": stats["device"],  # where ONNX Runtime really runs it: cpu here, cuda on a GPU
        "backend": "onnx",
        "policy_version": policy_for_model(  # the policy its folder carries
            model_dir, manifest.version, configured=None, default=get_settings().policy_path
        ).policy.version,
    }
    assert total(samples, "modq_worker_model_loaded") == 1
    assert total(samples, "process_resident_memory_bytes") > 0  # the process collectors too


def test_jobs_in_flight_counts_a_running_job(stack: Stack) -> None:
    items = [
        {"content_id": f"bulk-{i}", "content": f"bulk item {i} {uuid.uuid4().hex} " + "text " * 60}
        for i in range(400)
    ]
    job = stack.producer.send_task(
        "modq.moderate_many", kwargs={"items": items, "priority": "bulk"}, queue="bulk"
    )
    wait_until(
        lambda: total(stack.scrape(), "modq_worker_jobs_in_flight") == 1,
        timeout_s=60,
        interval_s=0.05,
        message="the running job never showed in flight",
    )
    assert len(job.get(timeout=300)) == 400
    assert total(stack.scrape(), "modq_worker_jobs_in_flight") == 0


def test_healthz_answers_503_with_the_reason_while_the_broker_is_down(stack: Stack) -> None:
    status, body = stack.get("/healthz")
    assert status == 200
    assert body["status"] == "ok" and set(body["checks"].values()) == {"ok"}
    assert {"process", "model", "broker", "model_breaker"} <= set(body["checks"])
    assert stack.get("/nowhere")[0] == 404
    stack.redis.stop()
    try:
        status, body = stack.get("/healthz")
        assert status == 503 and body["status"] == "unhealthy"
        assert body["checks"]["process"] == "ok" and body["checks"]["model"] == "ok"
        assert body["checks"]["broker"].startswith("unreachable (ConnectionError")
        assert stack.get("/livez") == (200, {"status": "ok"})  # no restart for a broker outage
    finally:
        stack.redis.start()
    wait_until(
        lambda: stack.get("/healthz")[0] == 200,
        timeout_s=30,
        message="healthz never recovered with the broker",
    )
    (result,) = stack.moderate(["back after the outage"])  # the consumer reconnected too
    assert result["decision"] in {"allow", "flag", "remove"}


def test_a_worker_whose_metrics_port_is_taken_refuses_to_start(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        log = tmp_path / "worker.log"
        worker = start_worker({"MODQ_WORKER_METRICS_PORT": str(port)}, threads=1, log_path=log)
        try:
            assert worker.wait(60) != 0
        finally:
            stop_worker(worker)
    assert f"cannot serve worker metrics on 127.0.0.1:{port}" in log.read_text()
