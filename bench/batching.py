"""Batcher settings compared in-process, the way a worker's task threads use the batcher.

    python -m bench.batching [--texts 600] [--repeats 3] [--clients 32]

Saturation: ``clients`` threads each submit one text and wait for it, again and again (closed
loop, as 32 Celery task threads do): texts/s. Light load: texts arrive one by one at a fixed
rate (open loop): latency p50/p99. Settings are tried round-robin, repeats interleaved.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

SETTINGS: dict[str, dict[str, Any]] = {
    "size 32, wait 5 ms (default)": {"max_batch_size": 32, "max_wait_ms": 5},
    "size 32, wait 0": {"max_batch_size": 32, "max_wait_ms": 0},
    "size 32, wait 20 ms": {"max_batch_size": 32, "max_wait_ms": 20},
    "size 8, wait 5 ms": {"max_batch_size": 8, "max_wait_ms": 5},
    "size 64, wait 5 ms": {"max_batch_size": 64, "max_wait_ms": 5},
    "size 32, wait 5 ms, 2 model lanes": {"max_batch_size": 32, "max_wait_ms": 5, "model_lanes": 2},
}
LIGHT_RATES_PER_S = (20.0, 60.0)


def saturation(batcher: Any, texts: list[str], clients: int) -> float:
    """Texts/s with ``clients`` threads each keeping one text in flight."""
    feed = iter(texts)
    lock = threading.Lock()

    def client() -> None:
        while True:
            with lock:
                text = next(feed, None)
            if text is None:
                return
            batcher.submit([text]).result(timeout=600)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(client) for _ in range(clients)]:
            future.result()
    return len(texts) / (time.perf_counter() - started)


def light_load_ms(batcher: Any, texts: list[str], rate_per_s: float) -> list[float]:
    """Latency of each text sent at a steady ``rate_per_s`` (each on its own thread)."""
    latencies: list[float] = []
    lock = threading.Lock()

    def one(text: str) -> None:
        started = time.perf_counter()
        batcher.submit([text]).result(timeout=600)
        with lock:
            latencies.append((time.perf_counter() - started) * 1000.0)

    start = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        for index, text in enumerate(texts):
            delay = start + index / rate_per_s - time.perf_counter()
            if delay > 0:
                time.sleep(delay)  # the arrival schedule itself, not a wait for an event
            pool.submit(one, text)
    return latencies


def main() -> None:
    from bench.modq_paths import percentile
    from bench.texts import bench_texts
    from gpu_worker.backends.onnx import OnnxBackend
    from gpu_worker.batcher import MicroBatcher

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--light-texts", type=int, default=60)
    parser.add_argument("--model-dir", type=Path, default=Path("models/current"))
    args = parser.parse_args()
    texts = bench_texts(args.texts)
    backend = OnnxBackend(args.model_dir, device="cpu", intra_op_threads=1)
    backend.score(texts[:16])
    rates: dict[str, list[float]] = {name: [] for name in SETTINGS}
    light: dict[tuple[str, float], list[float]] = {
        (name, rate): [] for name in SETTINGS for rate in LIGHT_RATES_PER_S
    }
    for _, (name, knobs) in itertools.product(range(args.repeats), SETTINGS.items()):
        batcher = MicroBatcher(backend, max_batch_tokens=4096, **knobs)
        try:
            rates[name].append(saturation(batcher, texts, args.clients))
            for rate in LIGHT_RATES_PER_S:
                light[(name, rate)] += light_load_ms(batcher, texts[: args.light_texts], rate)
        finally:
            batcher.close()
        print(f"  {name}: {rates[name][-1]:.0f} texts/s", flush=True)
    header = " | ".join(f"p50 / p99 ms at {rate:.0f} texts/s" for rate in LIGHT_RATES_PER_S)
    print(f"\n| setting | texts/s, {args.clients} clients | spread | {header} |")
    print("| --- | ---: | ---: |" + " ---: |" * len(LIGHT_RATES_PER_S))
    for name in SETTINGS:
        runs = rates[name]
        cells = " | ".join(
            f"{statistics.median(light[(name, r)]):.0f} / {percentile(light[(name, r)], 99):.0f}"
            for r in LIGHT_RATES_PER_S
        )
        print(
            f"| {name} | {statistics.median(runs):.0f} | {min(runs):.0f}–{max(runs):.0f} | "
            f"{cells} |"
        )


if __name__ == "__main__":
    main()
