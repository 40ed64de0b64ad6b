"""What the user history costs a job: the worker's lookup of a user's recent outcomes.

`python -m bench.user_history [--users 2000] [--results 100000] [--jobs 5000] [--database URL]`
fills a migrated database with ``--results`` past results of ``--users`` users (a tenth of
them reviewed as violations), then times, per job, what the pipeline adds before deciding:

- baseline: a job without a user_id (the lookup is skipped: today's path);
- miss: a user not seen for 30 s (one SQL round trip: two indexed queries);
- hit: a user seen within 30 s (the per-process cache).

It prints µs per job for each, the miss/hit mix of a given repeat rate, and the ratio to the
per-job cost of storing the result (bench.storage's group commit, measured here too).
SQLite (a temp file) by default; ``--database`` for PostgreSQL.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from db.results import ResultRepository
from db.reviews import ReviewRepository
from db.session import make_engine
from db.user_history import UserHistoryRepository
from modq.reviews import ReviewOutcome
from modq.schemas import Decision, ModerationRequest, ModerationResult, Priority
from policy import Policy, parse_policy
from tasks.user_features import UserFeatureSource

POLICY: Policy = parse_policy(
    {
        "version": "bench",
        "categories": {"harassment": {"remove": 0.9}},
        "user_history": {"window_days": 30, "repeat_offender_violations": 2},
    }
)


def _fill(url: str, users: int, results: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    engine = make_engine(url)
    repository = ResultRepository(engine)
    names = [f"user-{i}" for i in range(users)]
    now = datetime.now(UTC)
    batch: list[ModerationResult] = []
    violations: list[str] = []
    for i in range(results):
        content_id = f"past-{i}"
        decision = rng.choice([Decision.ALLOW] * 8 + [Decision.FLAG, Decision.REMOVE])
        batch.append(
            ModerationResult(
                content_id=content_id,
                decision=decision,
                scores={"harassment": 0.5},
                tripped=[],
                unscored_categories=[],
                model_name="bench",
                model_version="1",
                policy_version="v1",
                variant=None,
                cache_hit=False,
                latency_ms=1.0,
                content_sha256="0" * 64,
                created_at=(now - timedelta(days=rng.uniform(0, 60))).isoformat(),
                user_id=rng.choice(names),
            )
        )
        if decision is not Decision.ALLOW and rng.random() < 0.5:
            violations.append(content_id)
        if len(batch) == 2000:
            repository.store_many(batch)
            batch = []
    if batch:
        repository.store_many(batch)
    ReviewRepository(engine).record(
        [
            ReviewOutcome(c, "any", violation=True, source="bench")
            for c in violations[: results // 10]
        ]
    )
    engine.dispose()
    return names


def _request(user_id: str | None) -> ModerationRequest:
    return ModerationRequest(
        content_id=uuid.uuid4().hex, content="x", user_id=user_id, priority=Priority.NORMAL
    )


def _us_per_job(source: UserFeatureSource, requests: list[ModerationRequest]) -> float:
    started = time.perf_counter()
    for request in requests:
        source.for_requests(POLICY, [request])
    return (time.perf_counter() - started) / len(requests) * 1e6


def run(url: str, users: int, results: int, jobs: int) -> dict[str, float]:
    import migrations

    migrations.upgrade(url)
    print(f"filling {results} results of {users} users …", flush=True)
    names = _fill(url, users, results)
    engine = make_engine(url)
    repository = UserHistoryRepository(engine)
    # baseline: no user_id
    source = UserFeatureSource(repository, ttl_s=30.0)
    baseline = _us_per_job(source, [_request(None) for _ in range(jobs)])
    # misses: a fresh cache each job
    cold = UserFeatureSource(repository, ttl_s=0.0)
    miss = _us_per_job(cold, [_request(random.choice(names)) for _ in range(min(jobs, 2000))])
    # hits: the same users again within the TTL
    warm = UserFeatureSource(repository, ttl_s=3600.0)
    warm_users = names[:100]
    for name in warm_users:
        warm.get(name, 30)
    hit = _us_per_job(warm, [_request(random.choice(warm_users)) for _ in range(jobs)])
    store_repo = ResultRepository(engine)
    started = time.perf_counter()
    stored = 500
    for i in range(stored):
        store_repo.store(
            ModerationResult(
                content_id=f"store-{uuid.uuid4().hex}",
                decision=Decision.ALLOW,
                scores={"harassment": 0.1},
                tripped=[],
                unscored_categories=[],
                model_name="bench",
                model_version="1",
                policy_version="v1",
                variant=None,
                cache_hit=False,
                latency_ms=1.0,
                content_sha256="0" * 64,
                created_at=datetime.now(UTC).isoformat(),
                user_id=f"user-{i}",
            )
        )
    store_us = (time.perf_counter() - started) / stored * 1e6
    engine.dispose()
    return {"baseline_us": baseline, "miss_us": miss, "hit_us": hit, "store_one_us": store_us}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--results", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--database", default=None, help="SQLAlchemy URL (default: temp SQLite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database or f"sqlite:///{Path(folder) / 'bench.db'}"
        figures = run(url, args.users, args.results, args.jobs)
    print(f"database: {url.split(':')[0]}, {args.results} past results of {args.users} users")
    print(f"  no user_id (today's path):   {figures['baseline_us']:9.1f} µs/job")
    print(f"  user seen within 30 s (hit): {figures['hit_us']:9.1f} µs/job")
    print(f"  user not seen (SQL lookup):  {figures['miss_us']:9.1f} µs/job")
    print(f"  storing one result (ref.):   {figures['store_one_us']:9.1f} µs/job")
    print(
        f"  lookup miss / storing a result: {figures['miss_us'] / figures['store_one_us']:.2f}x; "
        f"hit / baseline: {figures['hit_us'] / max(figures['baseline_us'], 1e-9):.1f}x"
    )


if __name__ == "__main__":
    main()
