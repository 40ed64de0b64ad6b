"""Backpressure across real producer processes: 4 processes flood one bounded queue at once
with ``moderate_many`` (and single jobs), and the bound holds exactly; a real worker takes the
work, the places come back, and the bound still holds.

The issue measured 676 items admitted under a bound of 500 with 4 producers (each cached the
depth for 200 ms), and 6,000 with ``moderate_many`` (depth read in messages, charged in items).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from redis import Redis

from modq.settings import get_settings
from tests.polling import wait_until
from tests.workers import flush_private_redis, running_worker

REPO = Path(__file__).resolve().parents[2]
PRODUCERS = 4
BOUND = 500

# One producer process: waits for the start signal, then sends until it is refused 30 times in
# a row; prints the items the broker accepted from it.
PRODUCER = r"""
import random, sys, time
from redis import Redis
from modq import client
from modq.errors import Overloaded
import os
r = Redis.from_url(os.environ["MODQ_REDIS_URL"])
name, sizes = sys.argv[1], [int(s) for s in sys.argv[2].split(",")]
r.rpush("test.ready", name)
while not r.exists("test.go"):
    time.sleep(0.001)
accepted = refused_in_a_row = 0
while refused_in_a_row < 30:
    size = random.choice(sizes)
    items = [{"content_id": f"{name}-{accepted}-{i}", "content": "x"} for i in range(size)]
    try:
        if size == 1:
            client.moderate.delay(priority="bulk", **items[0])
        else:
            client.moderate_many.delay(items=items)
    except Overloaded:
        refused_in_a_row += 1
    else:
        accepted += size
        refused_in_a_row = 0
print(accepted)
"""


def items_waiting(client: Redis, queue: str) -> int:
    """Items in ``queue``'s lists, counted by decoding every message (not from any counter)."""
    total = 0
    for key in client.keys(f"{queue}*"):
        if client.type(key) != b"list":
            continue
        for raw in client.lrange(key, 0, -1):
            body = json.loads(base64.b64decode(json.loads(raw)["body"]))
            kwargs = body[1]
            total += len(kwargs["items"]) if "items" in kwargs else 1
    return total


def flood(env: dict[str, str], sizes: str) -> list[int]:
    """Start ``PRODUCERS`` producer processes, release them together, their accepted items."""
    client = Redis.from_url(env["MODQ_REDIS_URL"])
    client.delete("test.ready", "test.go")
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", PRODUCER, f"p{n}", sizes],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for n in range(PRODUCERS)
    ]
    try:
        wait_until(
            lambda: client.llen("test.ready") == PRODUCERS,
            timeout_s=60,
            message="producers did not start",
        )
        client.set("test.go", 1)
        outputs = [p.communicate(timeout=120) for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    for process, (_out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err.decode()[-2000:]
    return [int(out.split()[-1]) for out, _ in outputs]


@pytest.fixture
def producer_env():
    flush_private_redis()
    env = {**os.environ, "MODQ_MAX_QUEUE_DEPTH_BULK": str(BOUND), "PYTHONPATH": str(REPO)}
    yield env
    flush_private_redis()
    get_settings.cache_clear()


@pytest.mark.integration
def test_four_producer_processes_never_pass_the_bound(producer_env):
    client = Redis.from_url(producer_env["MODQ_REDIS_URL"])
    accepted = flood(producer_env, "1,7,25,100")
    waiting = items_waiting(client, "bulk")
    assert sum(accepted) == waiting  # what producers were told was accepted is what waits
    assert waiting <= BOUND, f"overshoot: {waiting} items under a bound of {BOUND}"
    assert waiting > BOUND - 100  # and the bound is reached, not refused early
    assert all(n > 0 for n in accepted)


@pytest.mark.integration
@pytest.mark.slow
def test_the_bound_holds_while_a_worker_drains_and_the_places_come_back(
    producer_env, database, tmp_path
):
    client = Redis.from_url(producer_env["MODQ_REDIS_URL"])
    accepted = flood(producer_env, "100")
    assert sum(accepted) == BOUND
    with running_worker({"MODQ_DATABASE_URL": database}, log_dir=tmp_path, threads=4):
        prefix = "_modq.reserved.bulk"
        wait_until(
            lambda: items_waiting(client, "bulk") == 0 and int(client.get(prefix) or 0) == 0,
            timeout_s=300,
            message="the worker did not take the work, or the places were not given back",
        )
        again = flood(producer_env, "100")  # admitted again as the worker takes work
        assert sum(again) >= BOUND
        assert items_waiting(client, "bulk") <= BOUND
