"""Where a job's time goes on the worker side, without Celery: cProfile of the pipeline.

    python -m bench.profile_paths [--items 200] [--top 15]

Runs ``ModerationPipeline.moderate`` in-process (private redis-server, SQLite file in a temp
folder, the served model): per-item jobs with a cold cache, then one 1,000-item bulk message of
cache hits; prints ms per item beside the model alone, and the top functions by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import tempfile
import time
from pathlib import Path
from typing import Any


def _profile(label: str, call: Any, top: int) -> float:
    profile = cProfile.Profile()
    started = time.perf_counter()
    profile.enable()
    call()
    profile.disable()
    elapsed_s = time.perf_counter() - started
    print(f"\n== {label}: {elapsed_s:.3f} s (under cProfile)")
    pstats.Stats(profile).sort_stats("tottime").print_stats(top)
    return elapsed_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    from cli.services import private_redis

    with private_redis() as redis_url:
        os.environ["MODQ_REDIS_URL"] = redis_url
        database = f"sqlite:///{Path(tempfile.mkdtemp(prefix='modq-profile-')) / 'p.db'}"
        import migrations

        migrations.upgrade(database)
        os.environ["MODQ_DATABASE_URL"] = database
        os.environ.setdefault("MODQ_MODEL_DIR", "models/current")
        from bench.texts import bench_texts
        from modq.schemas import validate_request
        from modq.settings import get_settings
        from tasks.pipeline import ModerationPipeline

        texts = bench_texts(args.items + 1000)
        pipeline = ModerationPipeline(get_settings())
        engine = pipeline.engine()
        backend = engine.backend

        def request(content_id: str, text: str, priority: str) -> Any:
            return validate_request(
                content_id=content_id, content=text, priority=priority, max_content_chars=20_000
            )

        def per_item() -> None:
            for index, text in enumerate(texts[: args.items]):
                (result,) = pipeline.moderate([request(f"one-{index}", text, "normal")])
                result.to_dict()

        started = time.perf_counter()
        for text in texts[: args.items]:
            backend.run(backend.tokenize([text]))
        model_ms = (time.perf_counter() - started) / args.items * 1000
        whole_s = _profile(f"{args.items} per-item jobs, cold cache", per_item, args.top)
        print(
            f"per item: {whole_s / args.items * 1000:.2f} ms (profiled); model alone "
            f"{model_ms:.2f} ms"
        )

        bulk = texts[args.items : args.items + 1000]
        pipeline.moderate([request(f"fill-{i}", t, "bulk") for i, t in enumerate(bulk)])

        def cache_hits() -> None:
            requests = [request(f"hit-{i}", t, "bulk") for i, t in enumerate(bulk)]
            for result in pipeline.moderate(requests):
                result.to_dict()

        hits_s = _profile("1,000 cache hits in one bulk message", cache_hits, args.top)
        print(f"cache hit: {hits_s:.3f} ms per item (profiled)")
        pipeline.close()


if __name__ == "__main__":
    main()
