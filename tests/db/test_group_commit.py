"""Group commit: concurrent jobs share transactions, each returns only once its rows are in,
and a failed transaction fails every job in it (none is acknowledged unstored)."""

from __future__ import annotations

import threading

import pytest

from db.group_commit import GroupCommitter
from db.results import ResultRepository
from db.session import make_engine
from modq.errors import StorageUnavailable
from tests.factories import make_result


def test_concurrent_jobs_share_transactions_and_all_land(database_url: str) -> None:
    engine = make_engine(database_url)
    repository = ResultRepository(engine)
    committer = GroupCommitter(repository.store_groups)
    start = threading.Barrier(40)
    stored_before_return: list[bool] = []

    def job(i: int) -> None:
        start.wait()
        committer.submit(([make_result(f"gc-{i}")], []))
        stored_before_return.append(bool(repository.find(f"gc-{i}")))

    threads = [threading.Thread(target=job, args=(i,)) for i in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    committer.close()
    assert repository.count("gc-") == 40
    assert all(stored_before_return) and len(stored_before_return) == 40
    assert committer.items == 40
    assert committer.transactions < 40  # they were grouped
    engine.dispose()


def test_a_lone_job_is_written_at_once(database_url: str) -> None:
    engine = make_engine(database_url)
    repository = ResultRepository(engine)
    committer = GroupCommitter(repository.store_groups)
    committer.submit(([make_result("alone")], []))
    assert repository.find("alone") and committer.transactions == 1
    committer.close()
    engine.dispose()


def test_a_failed_transaction_fails_every_job_in_it(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'unmigrated.db'}")  # no tables: inserts fail
    committer = GroupCommitter(ResultRepository(engine).store_groups)
    errors: list[Exception] = []

    def job(i: int) -> None:
        try:
            committer.submit(([make_result(f"lost-{i}")], []))
        except StorageUnavailable as exc:
            errors.append(exc)

    threads = [threading.Thread(target=job, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == 10  # nobody returns as if stored
    assert committer.transactions == 0
    with pytest.raises(StorageUnavailable):  # the writer survives a failed group
        committer.submit(([make_result("again")], []))
    committer.close()
    engine.dispose()
