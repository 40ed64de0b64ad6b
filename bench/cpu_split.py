"""Where the CPU goes on the per-item path: CPU ms per text by process, and the batches formed.

    python -m bench.cpu_split [--texts 3000] [--model-dir DIR] [--worker-processes N]

Runs ``moderate.delay()`` one text per message from 2 producer processes against real modq
workers (threads pool, 32 task threads shared among them, cold cache) on a private Redis, and
reads each process's CPU time (``/proc/PID/stat``) before and after: the workers, redis-server
and the producers. Next to the model's own cost (the ceiling), the rest is what the queue costs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from pathlib import Path

from bench import modq_paths
from bench.services import modq_workers
from bench.texts import bench_texts

COUNTERS = ("model_calls", "texts_scored", "padded_tokens", "real_tokens")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of ``pids`` so far (gone processes count 0)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _redis_pids(redis_url: str) -> list[int]:
    port = redis_url.rsplit(":", 1)[1].split("/")[0]
    found = subprocess.run(
        ["pgrep", "-f", f"redis-server.*{port}"], capture_output=True, text=True
    ).stdout
    return [int(pid) for pid in found.split()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=3000)
    parser.add_argument("--model-dir", type=Path, default=Path("models/current"))
    parser.add_argument("--worker-processes", type=int, default=1)
    args = parser.parse_args()
    count = args.worker_processes
    cold = {"MODQ_CACHE_LRU_ITEMS": "0"}  # no in-process cache: every text goes to the model
    with modq_workers("split", args.model_dir, processes=count, env=cold) as workers:
        texts = bench_texts(1000)
        modq_paths.per_item(texts[:200], producers=2)  # warm-up
        # every text unique: a cold cache throughout
        sent = [f"{t} #{i}" for i, t in enumerate(texts * (args.texts // 1000 + 1))]
        sent = sent[: args.texts]
        pids = [w.process.pid for w in workers]
        redis_pids = _redis_pids(os.environ["MODQ_REDIS_URL"])
        before = [w.stats() for w in workers]
        worker_s, redis_s, mine = cpu_seconds(pids), cpu_seconds(redis_pids), os.times()
        started = time.perf_counter()
        rate = modq_paths.per_item(sent, producers=2)
        wall_s = time.perf_counter() - started
        after_times = os.times()
        worker_s = cpu_seconds(pids) - worker_s
        redis_s = cpu_seconds(redis_pids) - redis_s
        producers_s = (after_times.children_user + after_times.children_system) - (
            mine.children_user + mine.children_system
        )
        after = [w.stats() for w in workers]
    n = len(sent)
    delta = {k: sum(a[k] - b[k] for a, b in zip(after, before, strict=True)) for k in COUNTERS}
    print(f"per-item: {rate:.0f} texts/s, {count} worker process(es), {n} texts, {wall_s:.1f} s")
    print("CPU ms per text:")
    for label, seconds in (
        ("workers", worker_s),
        ("redis-server", redis_s),
        ("producers", producers_s),
    ):
        print(f"  {label:<13} {seconds / n * 1000:6.2f}")
    used = worker_s + redis_s + producers_s
    cores = os.cpu_count() or 1
    print(f"  {'all':<13} {used / n * 1000:6.2f} of {cores * wall_s / n * 1000:.2f} available")
    print(
        f"batches: {delta['model_calls']}, texts per batch "
        f"{delta['texts_scored'] / max(1, delta['model_calls']):.1f}, padded/real tokens "
        f"{delta['padded_tokens'] / max(1, delta['real_tokens']):.3f}"
    )


if __name__ == "__main__":
    main()
