"""Fault scenario: a webhook receiver that never answers, while other callers moderate.

64 jobs are sent with a ``callback_url`` to a local receiver that holds every POST open (it
answers only when the scenario lets it, after the load's sending window), and the usual callers
(``bench.faults.load``) send and wait on jobs of their own at the same time. Deliveries run in
``modq webhooks`` (the ``webhooks`` queue, its own threads, at most
``MODQ_WEBHOOK_HOST_CONCURRENCY`` per host, short timeouts, backoff), never in the worker's task
threads: the callers see no timeout and every job is stored once; once the receiver answers,
every delivery arrives. (Before, 64 hanging deliveries held the moderating threads: another
key's traffic fell to 3 requests in 30 s.)
"""

from __future__ import annotations

import os
import select
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.faults import FaultRow
from bench.faults import load as callers
from bench.faults.redis_restart import Load, wait_for_rows, worker_env

QUICK = Load(jobs=300, producers=3, send_s=10, down_s=0, wait_s=45)
FULL = Load(jobs=1_500, producers=4, send_s=30, down_s=0, wait_s=90)
HOOKED_JOBS = 64
HOST_CONCURRENCY = 4
WEBHOOK_ENV = {
    "MODQ_WEBHOOK_SECRET": "faults-webhook-secret",
    "MODQ_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
    "MODQ_WEBHOOK_TIMEOUT_S": "2",
    "MODQ_WEBHOOK_BACKOFF_BASE_S": "0.5",
    "MODQ_WEBHOOK_BACKOFF_MAX_S": "4",
    "MODQ_WEBHOOK_MAX_ATTEMPTS": "30",
    "MODQ_WEBHOOK_HOST_CONCURRENCY": str(HOST_CONCURRENCY),
}


def _left(connection: socket.socket) -> bool:
    """Whether the peer closed ``connection`` (readable with nothing to read)."""
    readable, _, _ = select.select([connection], [], [], 0)
    if not readable:
        return False
    try:
        return connection.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


class HangingReceiver:
    """Holds every POST until ``release``, then answers 204; counts the attempts open at once
    (until the sender gives up and closes) and the deliveries answered."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.open_now = self.most_open = self.held = 0
        self.delivered: set[str] = set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.open_now += 1
                    receiver.held += 1
                    receiver.most_open = max(receiver.most_open, receiver.open_now)
                try:
                    while not receiver.release.wait(0.01):
                        if _left(self.connection):  # the sender timed out: not open any more
                            return
                    self.send_response(204)
                    self.end_headers()
                    with receiver.lock:
                        receiver.delivered.add(self.headers.get("Modq-Delivery", ""))
                except OSError:  # the sender left as the answer went out
                    pass
                finally:
                    with receiver.lock:
                        receiver.open_now -= 1

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def send_hooked(redis_url: str, prefix: str, url: str) -> list[str]:
    """``HOOKED_JOBS`` jobs with a callback, sent as a stock Celery producer would; their ids."""
    from celery import Celery

    from api.webhooks import webhook_options
    from modq.settings import get_settings

    saved = {name: os.environ.get(name) for name in WEBHOOK_ENV}
    os.environ.update(WEBHOOK_ENV)
    get_settings.cache_clear()
    producer = Celery("faults-webhooks", broker=redis_url, backend=redis_url, set_as_current=False)
    producer.conf.task_routes = ("modq.broker.routes.route_by_priority",)
    try:
        ids = []
        for n in range(HOOKED_JOBS):
            options = webhook_options(url, priority="normal", app=producer)
            producer.send_task(
                "modq.moderate",
                kwargs={"content_id": f"{prefix}-{n}", "content": callers.content(n)},
                queue="normal",
                **options,
            )
            ids.append(options["task_id"])
        return ids
    finally:
        producer.close()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        get_settings.cache_clear()


def run(workdir: Path, *, quick: bool) -> FaultRow:
    import migrations
    from cli.services import RedisServer, start_worker, stop_worker
    from modq.contract import WEBHOOK_QUEUE

    started = time.monotonic()
    load = QUICK if quick else FULL
    server = RedisServer(persistence="aof", folder=workdir / "redis")
    server.folder.mkdir(parents=True, exist_ok=True)
    database_url = f"sqlite:///{workdir / 'results.db'}"
    migrations.upgrade(database_url)
    server.start()
    receiver = HangingReceiver()
    worker = deliverer = None
    tag = uuid.uuid4().hex[:6]
    load_prefix, hook_prefix = f"load-{tag}", f"hook-{tag}"
    out = workdir / "load.json"
    try:
        env = {**worker_env(server.url, database_url), **WEBHOOK_ENV}
        worker = start_worker(env, threads=8, log_path=workdir / "worker.log")
        deliverer = start_worker(
            env,
            threads=16,
            log_path=workdir / "webhooks.log",
            hostname="webhooks@%h",
            queues=WEBHOOK_QUEUE,
        )
        job_ids = send_hooked(server.url, hook_prefix, receiver.url)
        wait_for_rows(database_url, hook_prefix, HOOKED_JOBS, timeout_s=180)
        load_process = callers.start(
            out,
            {"MODQ_REDIS_URL": server.url},
            prefix=load_prefix,
            jobs=load.jobs,
            producers=load.producers,
            send_s=load.send_s,
            wait_s=load.wait_s,
        )
        load_process.wait(load.send_s + load.wait_s + 120)
        held_during_load = receiver.held
        receiver.release.set()  # the receiver comes back: every delivery must arrive
        wanted = {f"{job_id}:job.succeeded" for job_id in job_ids}
        deadline = time.monotonic() + 60
        while not wanted <= receiver.delivered and time.monotonic() < deadline:
            time.sleep(0.2)
        report = callers.read(out)
        wait_for_rows(database_url, load_prefix, len(report.accepted), timeout_s=15)
    finally:
        receiver.close()
        for process in (deliverer, worker):
            if process is not None:
                stop_worker(process)
        server.stop()
    stored_load, duplicated_load = callers.stored_rows(database_url, load_prefix)
    stored_hooked, duplicated_hooked = callers.stored_rows(database_url, hook_prefix)
    accepted = set(report.accepted)
    hooked = {f"{hook_prefix}-{n}" for n in range(HOOKED_JOBS)}
    delivered = len(wanted & receiver.delivered)
    return FaultRow(
        scenario="hanging webhook receiver",
        broker="redis (AOF)",
        sent=len(accepted) + HOOKED_JOBS,
        stored=len(stored_load & accepted) + len(stored_hooked & hooked),
        lost=len(accepted - stored_load) + len(hooked - stored_hooked),
        duplicated=duplicated_load + duplicated_hooked,
        caller_errors=len(report.refused_at)
        + len(report.get_errors)
        + len(report.send_errors)
        + report.timeouts,
        seconds=round(time.monotonic() - started, 1),
        notes=(
            f"{HOOKED_JOBS} jobs with a callback to a receiver that held every POST during "
            f"the load ({held_during_load} attempts held, at most {receiver.most_open} open "
            f"at once, limit {HOST_CONCURRENCY}); callers answered {report.answered}, "
            f"timed out {report.timeouts}; webhooks delivered {delivered}/{HOOKED_JOBS} once "
            "it answered"
        ),
        extra={
            "callers_answered": report.answered,
            "webhook_attempts_held": held_during_load,
            "most_open_to_the_host": receiver.most_open,
            "webhooks_delivered": delivered,
        },
    )


if __name__ == "__main__":
    import argparse
    import json
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m bench.faults.hanging_webhook")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="modq-fault-webhook-") as folder:
        print(json.dumps(run(Path(folder), quick=args.quick).as_dict()))
