"""Storing results: one transaction per job vs group commit, from many task threads.

`python -m bench.storage [--jobs 3000] [--threads 32] [--database URL]`: each thread stores
one result per job and waits for it (as a worker does before acknowledging); prints jobs/s for
both ways on the same database, and the ratio. SQLite (a temp file, WAL, synchronous=FULL) by
default.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from db.group_commit import GroupCommitter
from db.results import ResultRepository
from db.session import make_engine
from modq.schemas import Decision, ModerationResult


def _result(content_id: str) -> ModerationResult:
    return ModerationResult(
        content_id=content_id,
        decision=Decision.ALLOW,
        scores={"violence": 0.01, "adult": 0.02, "hate_speech": 0.01, "spam": 0.03},
        tripped=[],
        unscored_categories=["self_harm"],
        model_name="bench",
        model_version="1",
        policy_version="v1",
        variant=None,
        cache_hit=False,
        latency_ms=12.0,
        content_sha256="0" * 64,
        created_at=datetime.now(UTC).isoformat(),
    )


def _jobs_per_s(store_one: Callable[[ModerationResult], object], jobs: int, threads: int) -> float:
    tag = uuid.uuid4().hex[:8]
    per_thread = jobs // threads

    def work(worker: int) -> None:
        for i in range(per_thread):
            store_one(_result(f"{tag}-{worker}-{i}"))

    pool = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    started = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return per_thread * threads / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> None:
    import migrations

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--database", default=None, help="SQLAlchemy URL (default: temp SQLite)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        url = args.database or f"sqlite:///{Path(folder) / 'bench.db'}"
        migrations.upgrade(url)
        engine = make_engine(url)
        repository = ResultRepository(engine)
        committer = GroupCommitter(repository.store_groups)
        single, grouped = [], []
        for _ in range(args.repeats):  # alternate, so drift hits both alike
            single.append(_jobs_per_s(repository.store, args.jobs, args.threads))
            grouped.append(
                _jobs_per_s(lambda r: committer.submit(([r], [])), args.jobs, args.threads)
            )
        committer.close()
        engine.dispose()
    single.sort()
    grouped.sort()
    mid = len(single) // 2
    print(f"storing {args.jobs} results from {args.threads} threads on {url.split(':')[0]}")
    for name, runs in (("one transaction per job", single), ("group commit", grouped)):
        print(f"  {name:<24} {runs[mid]:8.0f} jobs/s  ({runs[0]:.0f}–{runs[-1]:.0f})")
    print(
        f"  ratio: {grouped[mid] / single[mid]:.2f}x "
        f"({committer.items / max(committer.transactions, 1):.1f} jobs per transaction)"
    )


if __name__ == "__main__":
    main()
