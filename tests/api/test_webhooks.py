"""Signed webhooks: the signature and URL policy (pure), then real deliveries from a real
worker to a real local HTTP receiver: signed, retried with backoff, failures reported."""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from celery import Celery

import migrations
from api.webhooks import enqueue_with_callback, webhook_options
from cli.services import start_worker, stop_worker
from modq.contract import WEBHOOK_QUEUE
from modq.errors import InvalidContent
from modq.settings import get_settings
from modq.webhooks import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    check_callback_url,
    sign,
    verify,
    webhook_body,
)
from tests.polling import wait_until
from tests.workers import WorkerHandle

SECRET = "whsec-test-0123456789abcdef"


# --- the signature ------------------------------------------------------------------------


def test_a_signature_verifies_and_any_change_breaks_it():
    body = webhook_body("job.succeeded", "j1", result={"decision": "allow"})
    header = sign(SECRET.encode(), body, timestamp_s=1_700_000_000)
    assert header.startswith("t=1700000000,v1=") and len(header.split("v1=")[1]) == 64
    now = 1_700_000_010
    assert verify(SECRET.encode(), body, header, now_s=now)
    assert not verify(b"another secret", body, header, now_s=now)
    assert not verify(SECRET.encode(), body.replace(b"allow", b"flag!"), header, now_s=now)
    forged_time = header.replace("t=1700000000", "t=1700000005")
    assert not verify(SECRET.encode(), body, forged_time, now_s=now)
    assert not verify(SECRET.encode(), body, header, now_s=now + 301)  # a replay, too late
    assert not verify(SECRET.encode(), body, "v1=" + header.split("v1=")[1], now_s=now)
    rotated = f"{header},v1={'0' * 64}"  # two signatures: one matching is enough
    assert verify(SECRET.encode(), body, rotated, now_s=now)


def test_callback_urls_outside_the_policy_are_refused():
    ok = ("https://hooks.example.com/modq", "http://93.184.215.14:8080/x")
    for url in ok:
        assert check_callback_url(url, ()) == url
    refused = {
        "ftp://example.com/x": "http or https",
        "file:///etc/passwd": "http or https",
        "https://user:pw@example.com/": "credentials",
        "http://127.0.0.1:9/x": "private, loopback",
        "http://10.1.2.3/x": "private, loopback",
        "http://169.254.169.254/latest/meta-data": "private, loopback",
        "http://[::1]/x": "private, loopback",
        "http://[::ffff:192.168.0.1]/x": "private, loopback",
        "http://localhost:8000/x": "this host",
        "https:///nohost": "no host",
        "http://example.com:99999/": "not a URL",
        "x" * 3000: "at most",
    }
    for url, message in refused.items():
        with pytest.raises(InvalidContent, match=message) as caught:
            check_callback_url(url, ())
        assert caught.value.details["field"] == "callback_url"
    listed = ("127.0.0.1", "*.internal.example")
    assert check_callback_url("http://127.0.0.1:8000/hook", listed)
    assert check_callback_url("https://a.b.internal.example/hook", listed)
    with pytest.raises(InvalidContent, match="ALLOWED_HOSTS"):
        check_callback_url("https://hooks.example.com/modq", listed)


def test_the_worker_refuses_a_name_that_resolves_to_a_private_address(monkeypatch):
    from tasks.webhooks import _check_resolved_host

    host = socket.gethostname()
    addresses = {info[4][0] for info in socket.getaddrinfo(host, 80)}
    if not any(a.startswith(("127.", "10.", "192.168.", "172.")) for a in addresses):
        pytest.skip(f"{host} resolves to {addresses}: no private address to test with")
    with pytest.raises(InvalidContent, match="non-public address"):
        _check_resolved_host(f"http://{host}:8000/hook")
    monkeypatch.setenv("MODQ_WEBHOOK_ALLOWED_HOSTS", host)
    get_settings.cache_clear()
    _check_resolved_host(f"http://{host}:8000/hook")  # listed: the operator said so


def test_jobs_with_a_callback_need_webhooks_on_and_a_good_url(monkeypatch):
    from modq.client import moderate

    job = {"content_id": "w0", "content": "hello", "priority": "normal"}
    monkeypatch.delenv("MODQ_WEBHOOK_SECRET", raising=False)
    get_settings.cache_clear()
    with pytest.raises(InvalidContent, match="MODQ_WEBHOOK_SECRET"):
        enqueue_with_callback(moderate, job, callback_url="https://example.com/hook")
    monkeypatch.setenv("MODQ_WEBHOOK_SECRET", SECRET)
    get_settings.cache_clear()
    with pytest.raises(InvalidContent, match="http or https"):
        enqueue_with_callback(moderate, job, callback_url="gopher://example.com/")
    options = webhook_options("https://example.com/hook", priority="urgent", job_id="j-1")
    assert options["task_id"] == "j-1"
    for key, event in (("link", "job.succeeded"), ("link_error", "job.failed")):
        signature = options[key]
        assert signature["task"] == "modq.deliver_webhook"
        assert signature.options["queue"] == "webhooks"  # never a queue that moderates
        assert signature.kwargs == {
            "callback_url": "https://example.com/hook",
            "job_id": "j-1",
            "priority": "urgent",
            "event": event,
        }


# --- real deliveries ----------------------------------------------------------------------


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes
    at_s: float


@dataclass
class Receiver:
    """A local HTTP endpoint: records every POST; ``failures[path]`` first answers 500."""

    base: str
    deliveries: list[Delivery] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def to(self, path: str) -> list[Delivery]:
        with self.lock:
            return [d for d in self.deliveries if d.path == path]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server: ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with state.lock:
                state.deliveries.append(
                    Delivery(self.path, dict(self.headers), body, time.monotonic())
                )
                failing = state.failures.get(self.path, 0)
                if failing:
                    state.failures[self.path] = failing - 1
            self.send_response(500 if failing else 204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state = Receiver(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(10)


WEBHOOK_ENV = {
    "MODQ_WEBHOOK_SECRET": SECRET,
    "MODQ_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
    "MODQ_WEBHOOK_BACKOFF_BASE_S": "0.3",
    "MODQ_WEBHOOK_MAX_ATTEMPTS": "4",
    # a hanging receiver holds an attempt this long: far longer than any job here may wait
    "MODQ_WEBHOOK_TIMEOUT_S": "60",
    "MODQ_WEBHOOK_HOST_CONCURRENCY": "2",
}


@dataclass(frozen=True)
class Cluster:
    """A worker (4 task threads) and a webhook consumer (``modq webhooks``' command, 8
    threads) on a redis-server of this module's own, and a stock Celery producer on it: no
    other test's worker (with another secret) can take these deliveries, nor these theirs."""

    producer: Celery
    worker: WorkerHandle
    deliverer: WorkerHandle


@pytest.fixture(scope="module")
def cluster(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    from cli.services import private_redis

    root = tmp_path_factory.mktemp("webhook-worker")
    database = f"sqlite:///{root / 'results.db'}"
    migrations.upgrade(database)
    with private_redis() as redis_url:
        producer = Celery(
            "webhook-tests", broker=redis_url, backend=redis_url, set_as_current=False
        )
        producer.conf.task_routes = ("modq.broker.routes.route_by_priority",)  # the contract
        env = {"MODQ_DATABASE_URL": database, "MODQ_REDIS_URL": redis_url, **WEBHOOK_ENV}
        process = start_worker(env, threads=4, log_path=root / "worker.log")
        handle = WorkerHandle(process, "webhooks", root / "worker.log")
        consumer = start_worker(
            env,
            threads=8,
            log_path=root / "deliverer.log",
            hostname="deliverer@%h",
            queues=WEBHOOK_QUEUE,
        )
        deliverer = WorkerHandle(consumer, "deliverer", root / "deliverer.log")
        try:
            # ready when it answers a job (the test process's control app is on another Redis)
            first = producer.send_task("modq.moderate", kwargs={"content_id": "w", "content": "hi"})
            first.get(timeout=120)
            yield Cluster(producer, handle, deliverer)
        finally:
            stop_worker(consumer)
            stop_worker(process)
            producer.close()


@pytest.fixture
def producer_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in WEBHOOK_ENV.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()


def _verified(delivery: Delivery) -> dict[str, object]:
    assert verify(SECRET.encode(), delivery.body, delivery.headers[SIGNATURE_HEADER])
    assert delivery.headers["Content-Type"] == "application/json"
    return json.loads(delivery.body)


@pytest.mark.integration
def test_a_job_result_is_delivered_signed(cluster, receiver, producer_env):
    moderate = cluster.producer.signature("modq.moderate")
    job = {"content_id": "hook-1", "content": "have a lovely day", "priority": "urgent"}
    sent = enqueue_with_callback(moderate, job, callback_url=f"{receiver.base}/ok")
    result = sent.get(timeout=60)
    (delivery,) = wait_until(lambda: receiver.to("/ok"), timeout_s=30, message="no webhook arrived")
    payload = _verified(delivery)
    assert payload["event"] == "job.succeeded" and payload["job_id"] == sent.id
    assert payload["result"] == json.loads(json.dumps(result))  # the job's whole result
    assert delivery.headers["Modq-Event"] == "job.succeeded"
    assert delivery.headers[DELIVERY_HEADER] == f"{sent.id}:job.succeeded"
    assert "have a lovely day" not in delivery.body.decode()  # results carry no text


@pytest.mark.integration
def test_a_failing_receiver_gets_retries_with_backoff(cluster, receiver, producer_env):
    moderate = cluster.producer.signature("modq.moderate")
    receiver.failures["/flaky"] = 2
    job = {"content_id": "hook-2", "content": "see you soon", "priority": "normal"}
    sent = enqueue_with_callback(moderate, job, callback_url=f"{receiver.base}/flaky")
    (attempts,) = wait_until(
        lambda: [found for found in [receiver.to("/flaky")] if len(found) >= 3],
        timeout_s=60,
        message="the webhook was not retried until it succeeded",
    )
    assert {a.headers[DELIVERY_HEADER] for a in attempts} == {f"{sent.id}:job.succeeded"}
    assert all(_verified(a)["job_id"] == sent.id for a in attempts)
    gaps = [later.at_s - earlier.at_s for earlier, later in itertools.pairwise(attempts)]
    # backoff 0.3 s then 0.6 s, each with jitter down to half: waits grow from >= 0.15 s
    assert gaps[0] >= 0.15 and gaps[1] >= 0.3, gaps


@pytest.mark.integration
def test_a_failed_job_is_reported_by_webhook(cluster, receiver, producer_env):
    app = cluster.producer
    options = webhook_options(f"{receiver.base}/failed", priority="normal", app=app)
    raw = app.send_task(  # a foreign producer: the worker's own check refuses the empty text
        "modq.moderate",
        kwargs={"content_id": "hook-3", "content": ""},
        queue="normal",
        task_id=options["task_id"],
        link=options["link"],
        link_error=options["link_error"],
    )
    (delivery,) = wait_until(
        lambda: receiver.to("/failed"), timeout_s=30, message="no failure webhook arrived"
    )
    payload = _verified(delivery)
    assert payload == {
        "event": "job.failed",
        "job_id": raw.id,
        "error": {"code": "invalid_content", "message": "content is empty"},
    }


@pytest.mark.integration
def test_a_receiver_that_never_answers_2xx_is_given_up(cluster, receiver, producer_env):
    moderate = cluster.producer.signature("modq.moderate")
    receiver.failures["/down"] = 1_000
    job = {"content_id": "hook-4", "content": "anyone there?", "priority": "bulk"}
    sent = enqueue_with_callback(moderate, job, callback_url=f"{receiver.base}/down")
    wait_until(
        lambda: (
            f"webhook for job {sent.id} to 127.0.0.1 given up after 4 attempts"
            in cluster.deliverer.log.read_text()
        ),
        timeout_s=60,
        message="the webhook was not given up after MODQ_WEBHOOK_MAX_ATTEMPTS",
    )
    assert len(receiver.to("/down")) == 4


# --- a receiver that never answers --------------------------------------------------------


@dataclass
class HangingReceiver:
    """Holds every POST open until ``release`` is set, then answers 204; counts connections."""

    base: str
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    open_now: int = 0
    most_open: int = 0
    answered: set[str] = field(default_factory=set)


@pytest.fixture
def hanging_receiver() -> Iterator[HangingReceiver]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            with state.lock:
                state.open_now += 1
                state.most_open = max(state.most_open, state.open_now)
            try:
                state.release.wait(120)
                self.send_response(204)
                self.end_headers()
                with state.lock:
                    state.answered.add(self.headers[DELIVERY_HEADER])
            finally:
                with state.lock:
                    state.open_now -= 1

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state = HangingReceiver(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()
    thread.join(10)


@pytest.mark.integration
def test_a_hanging_receiver_never_holds_a_thread_that_moderates(
    cluster, hanging_receiver, producer_env
):
    """16 deliveries to a receiver that never answers (within the 60 s attempt timeout): the
    worker's 4 task threads go on moderating, at most MODQ_WEBHOOK_HOST_CONCURRENCY (2)
    deliveries to that host are open at once, and once it answers every one arrives."""
    moderate = cluster.producer.signature("modq.moderate")
    sent = [
        enqueue_with_callback(
            moderate,
            {"content_id": f"hang-{n}", "content": f"hello number {n}", "priority": "normal"},
            callback_url=f"{hanging_receiver.base}/hang",
        )
        for n in range(16)
    ]
    for job in sent:
        job.get(timeout=60)
    wait_until(
        lambda: hanging_receiver.open_now >= 2,
        timeout_s=30,
        message="the deliveries never reached the hanging receiver",
    )
    # while the receiver holds its deliveries, other jobs are moderated (before: the task
    # threads sat in the deliveries until the attempt timed out)
    later = [
        cluster.producer.send_task(
            "modq.moderate",
            kwargs={"content_id": f"other-{n}", "content": f"another text {n}"},
            queue="normal",
        )
        for n in range(8)
    ]
    for job in later:
        assert job.get(timeout=30)["content_id"].startswith("other-")
    assert hanging_receiver.open_now >= 1 and not hanging_receiver.release.is_set()
    assert hanging_receiver.most_open == 2  # bounded per receiver host
    hanging_receiver.release.set()
    wanted = {f"{job.id}:job.succeeded" for job in sent}
    wait_until(
        lambda: hanging_receiver.answered >= wanted,
        timeout_s=60,
        message="deliveries were lost after the receiver came back",
    )


def test_host_slots_lend_at_most_the_limit_per_host():
    from tasks.webhook_slots import HostSlots

    slots = HostSlots(2)
    assert slots.try_acquire("a") and slots.try_acquire("a")
    assert not slots.try_acquire("a")
    assert slots.try_acquire("b")  # another host is not held up
    slots.release("a")
    with slots.holding("a") as got:
        assert got and slots.busy("a") == 2
    assert slots.busy("a") == 1
    with pytest.raises(ValueError):
        HostSlots(0)
