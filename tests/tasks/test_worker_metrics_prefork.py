"""Under ``--pool prefork`` the children do the work and the parent serves their sum: one
port per worker whatever its concurrency (prometheus-client's multiprocess mode)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cli.services import free_port
from gpu_worker.manifest import ModelManifest
from tests.polling import wait_until
from tests.workers import running_worker

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, ""


def _samples(base_url: str) -> list[tuple[str, dict[str, str], float]]:
    status, text = _get(f"{base_url}/metrics")
    assert status == 200
    return [
        (s.name, s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def _total(samples: list[tuple[str, dict[str, str], float]], name: str) -> float:
    return sum(value for n, _, value in samples if n == name)


@pytest.fixture(scope="module")
def base_url(database_module: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    env = {"MODQ_DATABASE_URL": database_module, "MODQ_WORKER_METRICS_PORT": str(port)}
    root = tmp_path_factory.mktemp("prefork-metrics")
    with running_worker(env, log_dir=root, threads=2, pool="prefork"):
        url = f"http://127.0.0.1:{port}"
        wait_until(
            lambda: _get(f"{url}/healthz")[0] == 200,
            timeout_s=120,
            interval_s=0.3,
            message="prefork children never loaded their models",
        )
        yield url


@pytest.fixture(scope="module")
def database_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import migrations
    from tests.workers import flush_private_redis

    url = f"sqlite:///{tmp_path_factory.mktemp('prefork-db') / 'results.db'}"
    migrations.upgrade(url)
    flush_private_redis()
    yield url
    flush_private_redis()


def test_the_parent_serves_the_sum_of_its_children(base_url: str, model_dir: Path) -> None:
    from tasks import moderate

    texts = [f"prefork job {i} {uuid.uuid4().hex[:8]}" for i in range(6)]  # one window each
    before = _samples(base_url)
    jobs = [moderate.delay(content_id=f"pf-{i}", content=t) for i, t in enumerate(texts)]
    results = [job.get(timeout=120) for job in jobs]
    again = moderate.delay(content_id="pf-again", content=texts[0]).get(timeout=120)

    def settled() -> list[tuple[str, dict[str, str], float]] | None:
        """The scrape once every job has left the children's books: a caller has its result
        when the result is stored, a moment before its child's task_postrun counts the job
        finished and no longer in flight (under load that moment is long)."""
        samples = _samples(base_url)
        done = _total(samples, "modq_worker_jobs_total") - _total(before, "modq_worker_jobs_total")
        idle = _total(samples, "modq_worker_jobs_in_flight") == 0
        return samples if done >= 7 and idle else None

    after = wait_until(settled, timeout_s=60, interval_s=0.2, message="jobs never settled")

    assert again["cache_hit"] is True
    for name, moved in [
        ("modq_worker_decisions_total", 7),
        ("modq_worker_jobs_total", 7),
        ("modq_worker_cache_hits_total", 1),
        ("modq_worker_cache_misses_total", 6),
        ("modq_worker_batch_size_sum", 6),
    ]:
        assert _total(after, name) - _total(before, name) == moved, name
    assert _total(after, "modq_worker_jobs_in_flight") == 0
    manifest = ModelManifest.read(model_dir)
    served = [labels for n, labels, v in after if n == "modq_worker_model_info" and v == 1]
    assert served and all(labels["version"] == manifest.version for labels in served)
    assert {r["model_version"] for r in results} == {manifest.version}
    status, body = _get(f"{base_url}/healthz")
    assert status == 200 and json.loads(body)["checks"]["model"] == "ok"
