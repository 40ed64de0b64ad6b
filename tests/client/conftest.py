from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.workers import WorkerHandle, flush_private_redis, running_worker


@pytest.fixture(scope="module")
def worker(model_dir, tmp_path_factory) -> Iterator[WorkerHandle]:
    """One real worker (threads pool, the real model, SQLite) for the client's tests."""
    import migrations

    flush_private_redis()
    root = tmp_path_factory.mktemp("client-worker")
    url = f"sqlite:///{root / 'results.db'}"
    migrations.upgrade(url)
    with running_worker(
        {"MODQ_DATABASE_URL": url, "MODQ_MAX_WAIT_MS": "5"}, log_dir=root, threads=8
    ) as handle:
        yield handle
    flush_private_redis()
