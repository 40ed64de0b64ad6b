"""Round trip of a stock Celery producer beside modq's own, on an idle worker.

    python -m bench.stock_producer [--jobs 200] [--look-interval-ms 10,1000]

The stock producer is a plain Celery app configured only with the broker URL and JSON; its
``send_task("modq.moderate", kwargs=..., queue="normal")`` rings no doorbell, so an idle
worker finds the job at its next look at the queues (``MODQ_QUEUE_LOOK_INTERVAL_MS``). modq's own
producer (``modq.moderate.delay``) rings it. Jobs alternate between the two, one at a time,
each after a random pause of 5-50 ms (the worker idle, blocked on its doorbells), each with a
new text (no cache hit), through a real worker with the real model. Prints round-trip p50/p99
per producer and the stock/modq ratios, then what the idle worker costs over a few seconds
with no work: its round trips per second and the CPU of the worker and of redis-server.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.report import percentile
from bench.services import ModqWorker, modq_worker_env
from cli.services import private_redis

IDLE_S = 5.0
WARM_UP_JOBS = 10
PAUSE_S = (0.005, 0.05)
LOOK_INTERVAL_MS = 10.0  # modq's default MODQ_QUEUE_LOOK_INTERVAL_MS
ROUND_TRIPS = ("evalsha", "brpop")  # what an idle consumer sends (Lua's own calls excluded)
TEXT = "comment {}: a typical reply of a dozen words or so, neither long nor short"


def _percentile_ms(samples_s: list[float], q: float) -> float:
    return percentile(samples_s, q) * 1000


def _senders(redis_url: str) -> dict[str, Callable[[str], Any]]:
    from celery import Celery

    from modq import moderate

    stock = Celery("stock", broker=redis_url, backend=redis_url, set_as_current=False)
    stock.conf.update(task_serializer="json", accept_content=["json"], result_serializer="json")

    def modq_send(text: str) -> Any:
        return moderate.delay(content_id=uuid.uuid4().hex, content=text, priority="normal")

    def stock_send(text: str) -> Any:
        kwargs = {"content_id": uuid.uuid4().hex, "content": text, "priority": "normal"}
        return stock.send_task("modq.moderate", kwargs=kwargs, queue="normal")

    return {"modq": modq_send, "stock": stock_send}


def _round_trips(jobs: int, redis_url: str) -> dict[str, list[float]]:
    senders = _senders(redis_url)
    samples: dict[str, list[float]] = {name: [] for name in senders}
    rng = random.Random(7)
    for index in range(WARM_UP_JOBS + jobs):
        for name, send in senders.items():
            time.sleep(rng.uniform(*PAUSE_S))  # the worker is idle on its doorbells
            started_s = time.perf_counter()
            send(TEXT.format(f"{name}-{index}-{uuid.uuid4().hex[:6]}")).get(timeout=60)
            if index >= WARM_UP_JOBS:
                samples[name].append(time.perf_counter() - started_s)
    return samples


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _idle_cost(redis_url: str, pid: int) -> dict[str, float]:
    """An idle worker's cost per second: its round trips (EVALSHA looks and fetches, BRPOP
    waits), and the CPU of the worker and of redis-server, % of one core."""
    from redis import Redis

    redis = Redis.from_url(redis_url)

    def sample() -> tuple[int, float, float, float]:
        stats = redis.info("commandstats")
        trips = sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ROUND_TRIPS)
        cpu = redis.info("cpu")
        redis_cpu_s = float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])
        return trips, _cpu_s(pid), redis_cpu_s, time.monotonic()

    time.sleep(1.0)  # the last job's acks and result are done
    before = sample()
    time.sleep(IDLE_S)
    after = sample()
    elapsed_s = after[3] - before[3]
    return {
        "idle_round_trips_per_s": (after[0] - before[0]) / elapsed_s,
        "idle_worker_cpu_percent": (after[1] - before[1]) / elapsed_s * 100,
        "idle_redis_cpu_percent": (after[2] - before[2]) / elapsed_s * 100,
    }


def measure(
    redis_url: str, folder: Path, model_dir: Path, jobs: int, look_interval_ms: float
) -> dict[str, float]:
    """One worker with this look interval: both producers' round trips, its idle cost."""
    name = f"stock-{int(look_interval_ms)}"
    env = modq_worker_env(
        redis_url,
        folder,
        model_dir.resolve(),
        name,
        MODQ_QUEUE_LOOK_INTERVAL_MS=str(look_interval_ms),
        MODQ_MAX_WAIT_MS="2",
    )
    worker = ModqWorker(env, folder / f"{name}.log", name, threads=8)
    try:
        samples = _round_trips(jobs, redis_url)
        idle = _idle_cost(redis_url, worker.process.pid)
    finally:
        worker.stop()
    figures = {"look_interval_ms": look_interval_ms}
    for producer, values in samples.items():
        figures[f"{producer}_p50_ms"] = statistics.median(values) * 1000
        figures[f"{producer}_p99_ms"] = _percentile_ms(values, 0.99)
    figures["ratio_p50"] = figures["stock_p50_ms"] / figures["modq_p50_ms"]
    figures["ratio_p99"] = figures["stock_p99_ms"] / figures["modq_p99_ms"]
    figures.update(idle)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200, help="timed jobs per producer")
    parser.add_argument("--model-dir", type=Path, default=Path("models/current"))
    parser.add_argument(
        "--look-interval-ms",
        default="10",
        help="comma-separated MODQ_QUEUE_LOOK_INTERVAL_MS values, one worker each "
        "(1000: about what stock producers met before, the 1 s BRPOP timeout)",
    )
    args = parser.parse_args()
    with private_redis() as redis_url:
        os.environ["MODQ_REDIS_URL"] = redis_url  # before anything imports modq's client
        folder = Path(tempfile.mkdtemp(prefix="modq-bench-stock-"))
        rows = [
            measure(redis_url, folder, args.model_dir, args.jobs, float(value))
            for value in args.look_interval_ms.split(",")
        ]
    print(
        f"round trip on an idle worker, {args.jobs} jobs per producer, one at a time "
        f"(pauses {PAUSE_S[0] * 1000:.0f}-{PAUSE_S[1] * 1000:.0f} ms), real model"
    )
    print(
        "| look interval | modq p50 / p99 (ms) | stock p50 / p99 (ms) | stock/modq p50 | "
        "stock/modq p99 | idle round trips/s | idle worker CPU | idle redis-server CPU |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(
            f"| {row['look_interval_ms']:.0f} ms "
            f"| {row['modq_p50_ms']:.1f} / {row['modq_p99_ms']:.1f} "
            f"| {row['stock_p50_ms']:.1f} / {row['stock_p99_ms']:.1f} "
            f"| {row['ratio_p50']:.2f}x | {row['ratio_p99']:.2f}x "
            f"| {row['idle_round_trips_per_s']:.0f} | {row['idle_worker_cpu_percent']:.1f}% "
            f"| {row['idle_redis_cpu_percent']:.1f}% |"
        )


if __name__ == "__main__":
    main()
