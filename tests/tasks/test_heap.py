"""Freed heap memory goes back to the OS: RSS follows what a worker holds, not its high-water."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from tasks import heap, moderate
from tests.workers import running_worker


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_trim_returns_freed_pages_that_glibc_would_keep() -> None:
    junk = [bytes(2000) + bytes([i % 256]) for i in range(100_000)]  # ~200 MiB in malloc
    survivors = [bytes(1000) for _ in range(1_000)]  # pin a few pages, as real heaps do
    held_mib = _rss_mib()
    del junk
    gc.collect()
    assert heap.trim_heap()
    assert _rss_mib() < held_mib - 100  # without the trim RSS stays near the high-water
    assert len(survivors) == 1_000


@pytest.mark.long
@pytest.mark.integration
def test_workers_trim_after_tasks_at_most_every_interval(model_dir, database, tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {"MODQ_DATABASE_URL": database, "MODQ_MALLOC_TRIM_INTERVAL_S": "0.01"}
    with running_worker(env, log_dir=tmp_path, threads=2) as worker:
        for i in range(3):
            moderate.delay(content_id=f"trim-{i}", content=f"text {i}").get(timeout=60)
        assert worker.stats()["heap_trims"] >= 1
    env["MODQ_MALLOC_TRIM_INTERVAL_S"] = "0"
    with running_worker(env, log_dir=tmp_path, threads=2) as worker:
        moderate.delay(content_id="trim-off", content="text").get(timeout=60)
        assert worker.stats()["heap_trims"] == 0
