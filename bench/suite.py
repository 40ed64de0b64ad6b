"""The benchmark suite of issue 4: one run, same texts, same model, same machine.

    python -m bench [--quick] [--repeats N] [--texts N]

Prints a table, writes bench/results/latest.json and bench/results/latest.png. Rows:
ceiling (processes x ORT threads x batch policies), seed design (PyTorch eager, one task per
text), same ONNX model with no batching, modq per-item and bulk, cache hits, urgency, int8 vs
fp32, worker memory, a stock Celery producer's round trip beside modq's
(``bench.stock_producer``). Throughput rows are medians of repeats taken round-robin (a burst
of noise hits every row alike); ratios are between medians of this run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from bench import phases
from bench.report import Figures, docs_section, machine, plot, update_docs, write_json
from bench.summary import summarize
from bench.texts import bench_texts

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
SCRATCH = REPO / "var" / "bench"  # --quick runs (git-ignored)


@dataclass(frozen=True)
class Sizes:
    texts: int  # the mix every throughput row scores, each repeat
    repeats: int
    producers: int  # producer processes for the Celery rows
    urgent_jobs: int  # urgent jobs timed on the idle queue and again under the backlog
    backlog_items: int  # bulk items queued for the urgency row (issue: 10,000)
    backlog_per_message: int
    memory_jobs: int  # jobs a worker has done when its RSS is read the last time (100,000)
    layouts: tuple[tuple[int, int], ...]  # (processes, ORT threads) tried for the ceiling
    bulk_sizes: tuple[int, ...]  # items per moderate_many message

    @classmethod
    def full(cls) -> Sizes:
        return cls(1000, 3, 2, 100, 10_000, 100, 100_000, ((2, 1), (1, 1), (1, 2)), (100, 1000))

    @classmethod
    def quick(cls) -> Sizes:
        return cls(120, 2, 2, 15, 600, 50, 3_000, ((2, 1), (1, 1)), (100,))


def parse(argv: list[str] | None) -> tuple[argparse.Namespace, Sizes]:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run (~2 min)")
    parser.add_argument("--texts", type=int, help="texts per throughput row")
    parser.add_argument("--repeats", type=int, help="repeats of every throughput row")
    parser.add_argument("--model-dir", type=Path, default=None, help="default: MODQ_MODEL_DIR")
    parser.add_argument(
        "--out", type=Path, help="folder for JSON and PNG (default bench/results, var/bench quick)"
    )
    parser.add_argument(
        "--worker-processes",
        type=int,
        default=1,
        help="modq workers behind the per-item and bulk rows, as `modq worker --processes N` "
        "(32 task threads shared among them)",
    )
    parser.add_argument(
        "--skip", default="", help="comma-separated sections to leave out: seed,urgency,memory,..."
    )
    parser.add_argument(
        "--write-docs", action="store_true", help="put the tables in docs/benchmarks.md"
    )
    parser.add_argument(
        "--layouts", help="ceiling layouts PROCxTHREADS, comma-separated (e.g. 1x1,2x1,1x2)"
    )
    parser.add_argument(
        "--size",
        action="append",
        default=[],
        metavar="NAME=INT",
        help="override one size, e.g. --size backlog_per_message=1 (see Sizes)",
    )
    args = parser.parse_args(argv)
    sizes = Sizes.quick() if args.quick else Sizes.full()
    overrides: dict[str, int] = {
        k: v for k, v in (("texts", args.texts), ("repeats", args.repeats)) if v
    }
    for item in args.size:
        name, _, value = item.partition("=")
        if name not in asdict(sizes) or not value.isdigit():
            parser.error(
                f"--size {item!r}: expected NAME=INT with NAME one of {list(asdict(sizes))}"
            )
        overrides[name] = int(value)
    result = Sizes(**{**asdict(sizes), **overrides})
    if args.layouts:
        layouts = tuple(
            (int(p), int(t)) for p, t in (x.split("x") for x in args.layouts.split(","))
        )
        result = replace(result, layouts=layouts)
    return args, result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args, sizes = parse(argv)
    started_s = time.monotonic()
    model_dir = args.model_dir or Path(os.environ.get("MODQ_MODEL_DIR", "models/current"))
    model_dir = model_dir.resolve()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    load_at_start = machine()["load_average"]
    texts = bench_texts(sizes.texts)
    figures = Figures()
    extra: dict[str, Any] = {}
    folder = Path(tempfile.mkdtemp(prefix="modq-bench-"))
    print(f"texts: {len(texts)}, repeats: {sizes.repeats}, logs: {folder}", file=sys.stderr)
    from cli.services import private_redis

    with contextlib.ExitStack() as stack:
        modq_redis = stack.enter_context(private_redis())
        # before anything imports `tasks`: the parent talks to modq's private Redis only
        os.environ["MODQ_REDIS_URL"] = modq_redis
        for key in ("MODQ_BROKER_URL", "MODQ_RESULT_BACKEND_URL"):
            os.environ.pop(key, None)
        context = phases.Context(
            model_dir=model_dir,
            texts=texts,
            sizes=sizes,
            folder=folder,
            modq_redis=modq_redis,
            figures=figures,
            extra=extra,
            skip=skip,
            worker_processes=args.worker_processes,
        )
        phases.throughput_rounds(context)
        if "urgency" not in skip or "memory" not in skip or "cache" not in skip:
            phases.urgency_cache_memory(context)
        if "urgency" not in skip:
            phases.urgency_dedicated(context)
        if "stock" not in skip:  # issue 11: a stock Celery producer beside modq's own
            from bench.stock_producer import LOOK_INTERVAL_MS, measure

            extra["stock_producer"] = measure(
                modq_redis, folder, model_dir, 20 if args.quick else 200, LOOK_INTERVAL_MS
            )
        if "precision" not in skip:
            phases.precision(context)
        phases.tokenization(context)
    elapsed_s = time.monotonic() - started_s
    run = {
        "command": "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "quick": args.quick,
        "sizes": asdict(sizes),
        "machine": machine(),
        "load_average_at_start": load_at_start,
        "elapsed_s": round(elapsed_s, 1),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "model_dir": str(model_dir),
    }
    payload = summarize(figures, extra, run)
    out = args.out or (SCRATCH if args.quick else RESULTS)
    stem = "quick" if args.quick else "latest"
    write_json(out / f"{stem}.json", payload)
    plot(
        figures,
        payload["ceiling_key"],
        out / f"{stem}.png",
        f"modq, {run['machine']['cpu_count']} CPU cores, {len(texts)} comments, same model",
    )
    if args.write_docs:
        docs = REPO / "docs" / "benchmarks.md"
        plot_link = os.path.relpath(out / f"{stem}.png", docs.parent)
        update_docs(docs, docs_section(payload, plot_link))
    print(f"elapsed {elapsed_s / 60:.1f} min; load average {run['machine']['load_average']}")
    return payload


if __name__ == "__main__":
    main()
