"""Fault scenario: malformed messages pushed onto a real queue beside good jobs.

Each poison shape (``poison_shapes``: a body that is not base64, not ``[args, kwargs, embed]``,
not JSON; an unknown body encoding; a bad datetime under kombu's object hook; ``headers`` as a
list; ``delivery_info`` as a string; ``content`` missing; arguments of the wrong type) is made
from a real message of modq's producer and pushed raw onto the ``normal`` queue of a private
Redis (AOF), followed by good jobs sent by a stock Celery producer. One worker serves them all.
Counted from the outside: good jobs sent, result rows stored, lost, duplicated, callers that saw
an error; dead-lettered entries; poison messages whose caller got a typed FAILURE
(``PoisonMessage``). ``extra`` says whether the one worker lived through it all (same process,
no ``Unrecoverable error``) and the slowest fetch script Redis ran (its SLOWLOG).
``run_shapes`` is that scenario for any family of raw items (``bench.faults.hostile_items``).
"""

from __future__ import annotations

import base64
import copy
import json
import os
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bench.faults import FaultRow
from bench.faults import load as callers

REPO = Path(__file__).resolve().parents[2]
MARKER = "POISON-CONTENT-7f3a"  # text inside poison bodies: must never reach a log line
EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}

Mutation = Callable[[dict[str, Any]], None]


def _body(value: object) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


def _set(*path: str, value: object) -> Mutation:
    def mutate(message: dict[str, Any]) -> None:
        target = message
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


MUTATIONS: dict[str, Mutation] = {
    "body not base64": _set("body", value="!!!not base64"),
    "body of the wrong shape": _set("body", value=_body({"content": MARKER})),
    "unknown body_encoding": _set("properties", "body_encoding", value="rot13"),
    "bad datetime": _set("headers", "eta", value={"__type__": "datetime", "__value__": "x"}),
    "headers a list": _set("headers", value=["task", MARKER]),
    "delivery_info a string": _set("properties", "delivery_info", value="normal"),
    "body not JSON": _set("body", value=base64.b64encode(b"\xff{" + MARKER.encode()).decode()),
    "content missing": _set("body", value=_body([[], {"content_id": "poison-x"}, EMBED])),
    "arguments of the wrong type": _set(
        "body", value=_body([[], {"content_id": 5, "content": [MARKER]}, EMBED])
    ),
}
# A lone surrogate escape ("\ud800") was a shape here while Redis's cjson decided what is
# JSON; Python's decoder, the only one now, reads it, so it is a message, not poison.

Shapes = Mapping[str, tuple[str | None, bytes]]  # shape -> (task id, if any; raw item)


def identified(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A copy of ``template`` with a delivery tag and task id of its own, and that id."""
    message = copy.deepcopy(template)
    task_id = f"poison-{uuid.uuid4().hex[:12]}"
    message["properties"]["delivery_tag"] = uuid.uuid4().hex
    message["properties"]["correlation_id"] = task_id
    message["headers"]["id"] = task_id
    return task_id, message


def poison_shapes(template: dict[str, Any]) -> dict[str, tuple[str, bytes]]:
    """``{shape: (task id, raw message)}``: ``template`` (a raw message of modq's producer)
    broken each way, each with a delivery tag and task id of its own."""
    shapes = {}
    for name, mutate in MUTATIONS.items():
        task_id, message = identified(template)
        mutate(message)
        shapes[name] = (task_id, json.dumps(message).encode())
    return shapes


def producer_app(redis_url: str) -> Any:
    """A Celery app of the scenario's own (modq's shared keys, this Redis)."""
    from celery import Celery

    from modq.broker.config import shared_celery_config
    from modq.settings import Settings

    app = Celery("modq-poison-scenario")
    app.conf.update(shared_celery_config(Settings(redis_url=redis_url)))
    return app


def template_message(app: Any, redis_url: str) -> dict[str, Any]:
    """A real message of modq's producer, taken off the queue before any worker runs."""
    from redis import Redis

    app.send_task("modq.moderate", kwargs={"content_id": "t", "content": MARKER}, queue="normal")
    raw: Any = Redis.from_url(redis_url).rpop("normal")
    assert raw is not None, "the template message was not queued"
    return dict(json.loads(raw))


def push(redis_url: str, raw: bytes, *, ring: bool = False) -> None:
    """Put ``raw`` on the ``normal`` queue as a foreign producer would (no doorbell), or with a
    ring on the queue's doorbell (``ring``: a raw writer who knows modq's keys)."""
    from redis import Redis

    from modq.broker.transport import doorbell_key

    client = Redis.from_url(redis_url)
    client.lpush("normal", raw)
    if ring:
        client.lpush(doorbell_key("normal"), 1)


def slowest_fetch_ms(redis_url: str) -> float:
    """The longest fetch script (EVALSHA) in the server's SLOWLOG, in ms (0: none logged)."""
    from redis import Redis

    entries = Redis.from_url(redis_url).slowlog_get(1024)
    return max(
        [e["duration"] / 1000 for e in entries if e["command"].upper().startswith(b"EVALSHA")],
        default=0.0,
    )


def scenario(workdir: Path, *, rounds: int, good_per_shape: int) -> FaultRow:
    """Every poison shape, ``rounds`` times, each beside ``good_per_shape`` good jobs."""
    return run_shapes(
        workdir,
        name="poison messages",
        shapes=poison_shapes,
        rounds=rounds,
        good_per_shape=good_per_shape,
    )


def run_shapes(
    workdir: Path,
    *,
    name: str,
    shapes: Callable[[dict[str, Any]], Shapes],
    rounds: int,
    good_per_shape: int,
    env: dict[str, str] | None = None,
    ring: bool = False,
) -> FaultRow:
    """One row: the raw items ``shapes`` makes of a real message, pushed ``rounds`` times
    onto ``normal`` (``ring``: with a doorbell ring), each beside ``good_per_shape`` good
    jobs, against one worker (``env``: its extra settings)."""
    import migrations
    from cli.services import RedisServer, start_worker, stop_worker
    from modq.broker.dead_letters import get_dead_letters
    from modq.errors import PoisonMessage

    started = time.monotonic()
    server = RedisServer(persistence="aof", folder=workdir / "redis")
    server.folder.mkdir(parents=True, exist_ok=True)
    database_url = f"sqlite:///{workdir / 'results.db'}"
    migrations.upgrade(database_url)
    prefix = f"poison-good-{uuid.uuid4().hex[:6]}"
    server.start()
    from redis import Redis

    Redis.from_url(server.url).config_set("slowlog-log-slower-than", 1_000)  # µs
    log_path = workdir / "worker.log"
    worker = None
    try:
        app = producer_app(server.url)
        template = template_message(app, server.url)
        env = {
            "MODQ_REDIS_URL": server.url,
            "MODQ_DATABASE_URL": database_url,
            "MODQ_MODEL_DIR": os.environ.get("MODQ_MODEL_DIR", str(REPO / "models" / "current")),
            "MODQ_MAX_WAIT_MS": "5",
            "MODQ_WORKER_METRICS_PORT": "0",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        worker = start_worker(env, threads=4, log_path=log_path)
        poison_ids: list[str] = []
        pushed = 0
        good: list[Any] = []
        made = shapes(template)
        for round_ in range(rounds):
            for shape, (task_id, raw) in (made if round_ == 0 else shapes(template)).items():
                push(server.url, raw, ring=ring)
                pushed += 1
                if task_id is not None:
                    poison_ids.append(task_id)
                for i in range(good_per_shape):
                    content_id = f"{prefix}-{round_}-{len(good)}-{i}"
                    good.append(
                        app.send_task(
                            "modq.moderate",
                            kwargs={"content_id": content_id, "content": f"fine text {shape}"},
                            queue="normal",
                        )
                    )
        caller_errors = 0
        for job in good:
            try:
                job.get(timeout=180, propagate=True)
            except Exception:
                caller_errors += 1
        failed_typed = 0
        for task_id in poison_ids:
            try:
                app.AsyncResult(task_id).get(timeout=30)
            except PoisonMessage:
                failed_typed += 1
            except Exception:
                pass
        alive = worker.poll() is None
        store = get_dead_letters(server.url)
        dead_lettered = store.size()
        left_unacked = Redis.from_url(server.url).hlen("unacked")
        fetch_ms = slowest_fetch_ms(server.url)
    finally:
        if worker is not None:
            stop_worker(worker)
        server.stop()
    stored_ids, duplicated = callers.stored_rows(database_url, prefix)
    log = log_path.read_text(errors="replace")
    sent = len(good)
    return FaultRow(
        scenario=name,
        broker="redis (AOF)",
        sent=sent,
        stored=len(stored_ids),
        lost=sent - len(stored_ids) + max(pushed - dead_lettered, 0),  # poison counts too
        duplicated=duplicated,
        caller_errors=caller_errors,
        dead_lettered=dead_lettered,
        failed_typed=failed_typed,
        seconds=round(time.monotonic() - started, 1),
        notes=(
            f"{pushed} poison messages ({len(made)} shapes x {rounds}) among "
            f"{sent} good jobs; one worker, {'alive' if alive else 'DEAD'} at the end; "
            f"{left_unacked} left in unacked; slowest fetch {fetch_ms:.1f} ms"
        ),
        extra={
            "poison_sent": pushed,
            "shapes": sorted(made),
            "left_unacked": left_unacked,
            "slowest_fetch_ms": fetch_ms,
            "worker_alive": alive,
            "unrecoverable_errors": log.count("Unrecoverable error"),
            "content_in_log": MARKER in log,
        },
    )


def run(workdir: Path, *, quick: bool) -> FaultRow:
    """One row: every shape once beside 3 good jobs each (quick), or 3 rounds beside 20."""
    if quick:
        return scenario(workdir, rounds=1, good_per_shape=3)
    return scenario(workdir, rounds=3, good_per_shape=20)


if __name__ == "__main__":
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m bench.faults.poison")
    parser.add_argument("--quick", action="store_true")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="modq-fault-poison-") as folder:
        print(json.dumps(run(Path(folder), quick=arguments.quick).as_dict()))
