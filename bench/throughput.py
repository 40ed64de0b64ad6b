"""First throughput figure: texts/s through the whole queue beside the raw ONNX model.

Same texts (held-out comments from the `insults` package: a real mix of short and long), same
machine, same run. Runs a private redis-server and a real worker process; prints a table and
writes bench/results/throughput.json.

    python -m bench.throughput [--texts 2000] [--worker-threads 32]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _texts(count: int) -> list[str]:
    from training.datasets import insults_examples

    seen: dict[str, None] = {}
    for example in insults_examples():
        if example.held_out:
            seen.setdefault(example.text, None)
    texts = list(seen)
    if len(texts) < count:
        raise SystemExit(f"only {len(texts)} distinct held-out texts")
    return texts[:count]


def raw_onnx(texts: list[str], model_dir: Path, batch_size: int, sort: bool) -> float:
    """texts/s of the served ONNX model called in-process (1 ORT thread, as the worker)."""
    from gpu_worker.backends.onnx import OnnxBackend

    backend = OnnxBackend(model_dir, intra_op_threads=1)
    backend.score(texts[:8])  # warm-up
    ids = backend.tokenize(texts)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i])) if sort else range(len(ids))
    rows = [ids[i] for i in order]
    started = time.perf_counter()
    backend.tokenize(texts)  # tokenization is part of the cost
    for start in range(0, len(rows), batch_size):
        backend.run(rows[start : start + batch_size])
    return len(texts) / (time.perf_counter() - started)


def through_queue(texts: list[str], mode: str) -> float:
    """texts/s from the first send to the last result, cache cold (unique cache prefix)."""
    from tasks import moderate, moderate_many

    run = uuid.uuid4().hex[:8]
    started = time.perf_counter()
    if mode == "per-item":
        jobs = [
            moderate.delay(content_id=f"{run}-{i}", content=t, priority="normal")
            for i, t in enumerate(texts)
        ]
        for job in jobs:
            job.get(timeout=600)
    else:
        chunk = 250
        jobs = [
            moderate_many.delay(
                items=[
                    {"content_id": f"{run}-{i + j}", "content": t}
                    for j, t in enumerate(texts[i : i + chunk])
                ]
            )
            for i in range(0, len(texts), chunk)
        ]
        for job in jobs:
            job.get(timeout=600)
    return len(texts) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--worker-threads", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from cli.services import private_redis, start_worker, stop_worker, wait_for_worker

    model_dir = Path(os.environ.get("MODQ_MODEL_DIR", "models/current")).resolve()
    texts = _texts(args.texts)
    folder = Path(tempfile.mkdtemp(prefix="modq-bench-"))
    figures: dict[str, list[float]] = {}

    def record(name: str, value: float) -> None:
        figures.setdefault(name, []).append(value)
        print(f"  {name}: {value:.0f} texts/s", file=sys.stderr, flush=True)

    with private_redis() as redis_url:
        os.environ["MODQ_REDIS_URL"] = redis_url
        database = f"sqlite:///{folder / 'bench.db'}"
        import migrations

        migrations.upgrade(database)
        env = {
            "MODQ_REDIS_URL": redis_url,
            "MODQ_DATABASE_URL": database,
            "MODQ_MODEL_DIR": str(model_dir),
            "MODQ_CACHE_LRU_ITEMS": "0",
        }
        for repeat in range(args.repeats):
            print(f"repeat {repeat + 1}/{args.repeats}", file=sys.stderr)
            record("raw ONNX, one text at a time", raw_onnx(texts[:500], model_dir, 1, False))
            record("raw ONNX, batches of 32, length-sorted", raw_onnx(texts, model_dir, 32, True))
            for mode in ("per-item", "bulk"):
                env["MODQ_CACHE_KEY_PREFIX"] = f"bench:{uuid.uuid4().hex[:8]}:"
                worker = start_worker(
                    env, threads=args.worker_threads, log_path=folder / "worker.log"
                )
                try:
                    wait_for_worker(worker)
                    label = (
                        "queue, moderate.delay() per text"
                        if mode == "per-item"
                        else "queue, moderate_many() 250 per message"
                    )
                    record(label, through_queue(texts, mode))
                finally:
                    stop_worker(worker)
    ceiling = statistics.median(figures["raw ONNX, batches of 32, length-sorted"])
    table = []
    print(f"\n{'path':<42} {'median texts/s':>15} {'spread':>13} {'vs raw batched':>15}")
    for name, values in figures.items():
        median = statistics.median(values)
        spread = f"{min(values):.0f}-{max(values):.0f}"
        print(f"{name:<42} {median:>15.0f} {spread:>13} {median / ceiling:>14.2f}x")
        table.append({"path": name, "median_texts_per_s": median, "runs": values})
    RESULTS.mkdir(exist_ok=True)
    plot(table, RESULTS / "throughput.png")
    out = RESULTS / "throughput.json"
    out.write_text(
        json.dumps({"texts": len(texts), "cpu_count": os.cpu_count(), "results": table}, indent=2)
        + "\n"
    )
    print(f"\nwrote {out}")


def plot(table: list[dict[str, object]], path: Path) -> None:
    """A horizontal bar per path: median texts/s with the min-max spread as an error bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [str(row["path"]) for row in table]
    runs = [list(row["runs"]) for row in table]  # type: ignore[call-overload]
    medians = [statistics.median(r) for r in runs]
    spread = [
        [m - min(r) for m, r in zip(medians, runs, strict=True)],
        [max(r) - m for m, r in zip(medians, runs, strict=True)],
    ]
    figure, axes = plt.subplots(figsize=(9, 3.2))
    axes.barh(names, medians, xerr=spread, color=["#999", "#555", "#2a7", "#1a5"][: len(names)])
    for y, value in enumerate(medians):
        axes.text(value + spread[1][y], y, f"  {value:.0f}", va="center")
    axes.invert_yaxis()
    axes.set_xlabel("texts/s (median of repeats; bars show min-max)")
    axes.set_title(f"modq throughput, {os.cpu_count()} CPU cores, same texts and model")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
