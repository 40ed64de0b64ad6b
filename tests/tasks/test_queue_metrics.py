"""Queue metrics scraped over HTTP from the real private Redis: depths equal the real lists,
the oldest message's age, the wait histogram a real worker fills, refusals, a broker outage,
and the `modq metrics serve` command."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry
from redis import Redis

from cli.services import free_port
from modq.broker.queues import ENQUEUED_AT_HEADER, BrokerQueues, enqueued_at_s
from modq.errors import Overloaded
from modq.settings import get_settings
from tasks import app, moderate, moderate_many
from tasks.queue_metrics import QueueCollector, make_registry, serve
from tests.workers import flush_private_redis, running_worker

QUEUES = ("urgent", "normal", "bulk")
JOBS = {"urgent": 2, "normal": 3, "bulk": 4}


@pytest.fixture
def queues():
    flush_private_redis()
    yield BrokerQueues.from_app(app)
    flush_private_redis()


@pytest.fixture
def exporter(queues):
    """The exporter serving on a free port in this process; yields a scrape function."""
    server, _ = serve("127.0.0.1", 0, make_registry(queues, get_settings()))
    yield lambda: scrape(f"http://127.0.0.1:{server.server_port}/metrics")
    server.shutdown()
    server.server_close()


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of one /metrics page."""
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        page = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(page)
        for s in family.samples
    }


def sample(samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def _job(priority: str) -> dict[str, str]:
    return {"content_id": f"c-{uuid.uuid4().hex[:8]}", "content": "hello", "priority": priority}


def _enqueue_all() -> tuple[float, list]:
    """JOBS per queue (bulk partly as one moderate_many); returns when the first job was sent."""
    sent = [moderate.delay(**_job("urgent"))]
    first_sent_s = time.time()
    sent += [moderate.delay(**_job("urgent")) for _ in range(JOBS["urgent"] - 1)]
    sent += [moderate.delay(**_job("normal")) for _ in range(JOBS["normal"])]
    sent += [moderate.delay(**_job("bulk")) for _ in range(JOBS["bulk"] - 1)]
    sent.append(moderate_many.delay(items=[{"content_id": "m1", "content": "x"}] * 2))
    return first_sent_s, sent


def test_gauges_equal_the_real_depths_and_the_oldest_age(queues, exporter):
    first_sent_s, _ = _enqueue_all()
    client = Redis.from_url(os.environ["MODQ_REDIS_URL"])
    real = {q: sum(client.llen(k) for k in queues.keys(q)) for q in QUEUES}
    assert real == JOBS
    scrape_started_s = time.time()
    samples = exporter()
    settings = get_settings()
    assert sample(samples, "modq_broker_up") == 1
    for queue in QUEUES:
        assert sample(samples, "modq_queue_depth", queue=queue) == real[queue]
        bound = getattr(settings, f"max_queue_depth_{queue}")
        assert sample(samples, "modq_queue_depth_bound", queue=queue) == bound
        assert sample(samples, "modq_queue_wait_seconds_count", queue=queue) == 0
    # the oldest urgent job was sent before first_sent_s; the newest well after it
    age_s = sample(samples, "modq_queue_oldest_age_seconds", queue="urgent")
    assert scrape_started_s - first_sent_s <= age_s <= time.time() - first_sent_s + 1.0
    assert all(
        sample(samples, "modq_queue_oldest_age_seconds", queue=q) > 0 for q in ("normal", "bulk")
    )


def test_the_age_is_the_oldest_messages(queues):
    _enqueue_all()
    client = Redis.from_url(os.environ["MODQ_REDIS_URL"])
    stamps = {
        q: [json.loads(m)["headers"][ENQUEUED_AT_HEADER] for m in client.lrange(q, 0, -1)]
        for q in QUEUES
    }
    now_s = time.time() + 100.0
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueCollector(queues, get_settings(), clock=lambda: now_s))
    server, _ = serve("127.0.0.1", 0, registry)
    try:
        samples = scrape(f"http://127.0.0.1:{server.server_port}/metrics")
    finally:
        server.shutdown()
        server.server_close()
    for queue in QUEUES:
        assert len(set(stamps[queue])) == JOBS[queue]
        age_s = sample(samples, "modq_queue_oldest_age_seconds", queue=queue)
        assert age_s == pytest.approx(now_s - min(stamps[queue]), abs=1e-6)


def test_priority_sub_queues_are_counted(queues, exporter):
    # a Celery message priority lands in kombu's per-step list ("normal\x06\x163"), not "normal"
    moderate.apply_async(kwargs=_job("normal"), priority=5)
    moderate.delay(**_job("normal"))
    client = Redis.from_url(os.environ["MODQ_REDIS_URL"])
    assert client.llen("normal") == 1
    samples = exporter()
    assert sample(samples, "modq_queue_depth", queue="normal") == 2
    assert sample(samples, "modq_queue_oldest_age_seconds", queue="normal") > 0


def test_refusals_are_exported(queues, exporter, monkeypatch):
    monkeypatch.setenv("MODQ_MAX_QUEUE_DEPTH_BULK", "1")
    monkeypatch.setenv("MODQ_QUEUE_DEPTH_CACHE_MS", "0")
    get_settings.cache_clear()
    try:
        moderate.delay(**_job("bulk"))
        for _ in range(2):
            with pytest.raises(Overloaded):
                moderate.delay(**_job("bulk"))
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    samples = exporter()
    assert sample(samples, "modq_overloaded_total", queue="bulk") == 2
    assert sample(samples, "modq_overloaded_total", queue="urgent") == 0


def test_a_broker_outage_is_reported_not_raised():
    dead = BrokerQueues(f"redis://127.0.0.1:{free_port()}/0", {})
    server, _ = serve("127.0.0.1", 0, make_registry(dead, get_settings()))
    try:
        samples = scrape(f"http://127.0.0.1:{server.server_port}/metrics")
    finally:
        server.shutdown()
        server.server_close()
    assert samples == {("modq_broker_up", ()): 0}


@pytest.mark.integration
@pytest.mark.slow
def test_a_drain_empties_the_gauges_and_fills_the_wait_histogram(
    queues, exporter, database, tmp_path
):
    _, sent = _enqueue_all()
    assert sample(exporter(), "modq_queue_depth", queue="bulk") == JOBS["bulk"]
    with running_worker({"MODQ_DATABASE_URL": database}, log_dir=tmp_path, threads=4):
        for result in sent:
            result.get(timeout=120)
    samples = exporter()
    for queue in QUEUES:
        assert sample(samples, "modq_queue_depth", queue=queue) == 0
        assert sample(samples, "modq_queue_oldest_age_seconds", queue=queue) == 0
        # one wait per message, recorded by the worker as each job started
        assert sample(samples, "modq_queue_wait_seconds_count", queue=queue) == JOBS[queue]
        assert (
            sample(samples, "modq_queue_wait_seconds_bucket", queue=queue, le="+Inf")
            == (JOBS[queue])
        )
        assert sample(samples, "modq_queue_wait_seconds_sum", queue=queue) > 0


@pytest.mark.integration
def test_the_serve_command_answers_and_stops_on_sigterm(queues, tmp_path):
    port = free_port()
    code = f"from cli.metrics_cmds import metrics; metrics(['serve', '--port', '{port}'])"
    with subprocess.Popen(
        [sys.executable, "-c", code], stderr=subprocess.PIPE, env=dict(os.environ)
    ) as process:
        try:
            assert process.stderr is not None
            banner = process.stderr.readline().decode()  # printed once the socket is bound
            assert f"http://127.0.0.1:{port}/metrics" in banner
            moderate.delay(**_job("urgent"))
            samples = scrape(f"http://127.0.0.1:{port}/metrics")
            assert sample(samples, "modq_queue_depth", queue="urgent") == 1
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
            with pytest.raises(urllib.error.URLError):
                scrape(f"http://127.0.0.1:{port}/metrics")
        finally:
            if process.poll() is None:
                process.kill()


def test_a_message_without_the_header_is_dated_from_its_body(queues):
    moderate_many.delay(items=[{"content_id": "m1", "content": "x"}])
    client = Redis.from_url(os.environ["MODQ_REDIS_URL"])
    message = json.loads(client.lindex("bulk", -1))
    stamp = message["headers"].pop(ENQUEUED_AT_HEADER)
    assert enqueued_at_s(json.dumps(message)) == stamp  # an older producer's message
    assert enqueued_at_s(b"not json") is None
    assert enqueued_at_s(json.dumps({"headers": {}, "body": "e30="})) is None  # foreign body
