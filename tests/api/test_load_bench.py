"""The load benchmark of the HTTP front (``bench.http_api``) at a tiny size, against the
session's real worker and ``modq api``: every request counted on both paths, none failed, the
figures sane. Times are never asserted (the benchmark reports them)."""

from __future__ import annotations

import pytest

from bench.http_api import CELERY, HTTP, Sizes, markdown, measure, targets
from tests.api.conftest import ApiServer
from tests.workers import WorkerHandle

pytestmark = pytest.mark.integration

TEXTS = ["you are an idiot", "have a nice day", "buy cheap pills now", "I will find you"]


def test_both_paths_are_driven_and_counted_at_each_level(
    api_server: ApiServer, api_key: str, api_worker: WorkerHandle
) -> None:
    sizes = Sizes(levels=(1, 3), requests=(5, 5), rounds=1, warm_up=2)
    pids = {"worker": api_worker.process.pid, "api": api_server.process.pid}
    before = api_worker.stats()

    levels = measure(api_server.url, api_key, TEXTS, sizes, pids)

    after = api_worker.stats()
    assert [level["clients"] for level in levels] == [1, 3]
    for level in levels:
        for path in (HTTP, CELERY):
            figures = level[path]
            assert figures["requests"] == 5, figures
            assert figures["errors"] == 0, figures["error_samples"]
            assert figures["p99_ms"] >= figures["p50_ms"] > 0
            assert figures["requests_per_s"] > 0
            assert set(figures["cpu_ms_per_request"]) == {"worker", "api", "driver"}
        assert level["ratios"]["throughput"] > 0 and level["ratios"]["p99"] > 0
    # every text was distinct: the model scored each one, the cache answered none
    sent = 2 * ((2 + 2) + (1 + 5) + (3 + 5))  # per path and level: client warm-ups + timed
    assert after["texts_scored"] - before["texts_scored"] >= sent
    assert after["cache_hits"] == before["cache_hits"]
    verdicts = targets(levels)
    assert [v["clients"] for v in verdicts] == [1, 1, 3, 3]
    assert "| 3 | HTTP POST /v1/moderate | 5 | 0 |" in markdown(levels, verdicts)


def test_the_tenant_row_drives_a_victim_alone_and_beside_a_flood(
    api_server: ApiServer, api_database_url: str
) -> None:
    """``bench.http_tenants`` at a tiny size: every victim request answered in both phases, the
    flood answered too, and the ratio computed from the two p99s (its value is the benchmark's
    to report, never asserted here)."""
    from bench.http_tenants import TenantSizes, run_tenants, tenant_markdown
    from tests.api.conftest import make_key

    victim, flood = make_key(api_database_url), make_key(api_database_url)
    result = run_tenants(api_server.url, victim, flood, TEXTS, TenantSizes(6, 6, 1))

    (row,) = result["runs"]
    assert row["victim_requests"] == 6
    assert row["flood_p99_ms"] >= row["flood_p50_ms"] > 0
    assert row["alone_p99_ms"] >= row["alone_p50_ms"] > 0
    assert row["ratio_p99"] == row["flood_p99_ms"] / row["alone_p99_ms"]
    assert sum(row["flood_responses"].values()) >= 6 and set(row["flood_responses"]) == {"200"}
    assert row["victim_failed_alone"] == row["victim_failed_with_flood"] == 0
    assert result["ratio_min"] == result["ratio_max"] == row["ratio_p99"]
    assert "Tenant row: victim p99 with a flood key" in tenant_markdown(result)
