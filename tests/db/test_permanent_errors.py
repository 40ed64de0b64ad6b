"""Permanent data errors fail fast with ``StorageRejected`` (never retried as
``StorageUnavailable``), and a bad row in a shared group transaction fails only its own job."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

import migrations
from db.group_commit import GroupCommitter
from db.results import ResultRepository
from db.reviews import ReviewRepository
from db.session import make_engine
from db.storage_errors import storage_errors
from modq.errors import RETRYABLE, InvalidContent, StorageRejected, StorageUnavailable
from modq.reviews import OVERALL, ReviewOutcome
from tests.conftest import postgres_database
from tests.factories import make_result
from tests.polling import wait_until


@pytest.fixture(scope="module")
def postgres_url() -> str:  # type: ignore[misc]
    with postgres_database() as database:
        migrations.upgrade(database.url)
        yield database.url


def test_storage_rejected_is_typed_and_never_retried() -> None:
    assert issubclass(StorageRejected, InvalidContent)
    assert not issubclass(StorageRejected, RETRYABLE)
    assert StorageRejected.code == "storage_rejected"


def test_nul_in_content_id_on_postgres_is_rejected_not_retried(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    with pytest.raises(StorageRejected) as caught:
        ResultRepository(engine).store(make_result("nul\x00id"))
    assert "NUL" in str(caught.value) and "nul\x00id" not in str(caught.value)
    engine.dispose()


@pytest.mark.parametrize("field", ["reviewer", "source"])
def test_over_long_reviewer_or_source_on_postgres_is_rejected(postgres_url: str, field) -> None:
    engine = make_engine(postgres_url)
    ResultRepository(engine).store(make_result(f"long-{field}"))
    values = {"reviewer": "r", "source": "s", field: "x" * 300}  # columns are String(256)
    outcome = ReviewOutcome(
        f"long-{field}", OVERALL, True, values["source"], values["reviewer"], datetime.now(UTC)
    )
    with pytest.raises(StorageRejected):
        ReviewRepository(engine).record([outcome])
    engine.dispose()


def test_a_database_that_is_down_is_still_transient() -> None:
    engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2")
    with pytest.raises(StorageUnavailable):
        ResultRepository(engine).store(make_result("down"))
    engine.dispose()


def _bad_row(database_url: str) -> object:
    """A row the database refuses: NUL on PostgreSQL, a NULL model version on SQLite."""
    if database_url.startswith("postgresql"):
        return make_result("bad\x00row")
    return make_result("bad-row", model_version=None)


def test_a_bad_row_fails_only_its_own_job(database_url: str) -> None:
    """40 jobs share one group transaction with one bad row: 40 stored, 1 StorageRejected."""
    engine = make_engine(database_url)
    repository = ResultRepository(engine)
    gate = threading.Event()

    def store(groups: Sequence[tuple[list, list]]) -> int:
        gate.wait(30)  # hold the writer so the next jobs queue up into one group
        return repository.store_groups(groups)

    committer: GroupCommitter = GroupCommitter(store)
    outcomes: dict[str, BaseException | None] = {}

    def job(key: str, result: object) -> None:
        try:
            committer.submit(([result], []))
            outcomes[key] = None
        except BaseException as exc:
            outcomes[key] = exc

    first = threading.Thread(target=job, args=("good-first", make_result("iso-first")))
    first.start()
    wait_until(lambda: committer._queue.qsize() == 0, timeout_s=10, message="writer idle")
    threads = [
        threading.Thread(target=job, args=(f"good-{i}", make_result(f"iso-{i}"))) for i in range(39)
    ]
    threads.append(threading.Thread(target=job, args=("bad", _bad_row(database_url))))
    for thread in threads:
        thread.start()
    wait_until(lambda: committer._queue.qsize() == 40, timeout_s=10, message="40 queued")
    gate.set()
    for thread in [first, *threads]:
        thread.join(30)
    committer.close()

    assert isinstance(outcomes.pop("bad"), StorageRejected)
    assert outcomes == {key: None for key in outcomes} and len(outcomes) == 40
    assert repository.count("iso-") == 40
    assert committer.isolations == 1
    engine.dispose()


def test_an_unavailable_database_still_fails_the_whole_group(tmp_path) -> None:
    """A transient failure is not split into one attempt per job (they would all fail)."""
    calls: list[int] = []

    def store(groups: Sequence[object]) -> int:
        calls.append(len(groups))
        raise StorageUnavailable("down")

    committer: GroupCommitter = GroupCommitter(store)
    with pytest.raises(StorageUnavailable):
        committer.submit(object())
    committer.close()
    assert calls == [1] and committer.isolations == 0


def test_a_bug_in_our_own_code_is_raised_as_it_is_not_as_a_refused_row():
    # a TypeError raised by a repository's own Python (not by a driver adapting a parameter,
    # which SQLAlchemy wraps in a StatementError) must not become a permanent StorageRejected
    # with its traceback hidden: the job would fail for good on a bug
    with pytest.raises(TypeError, match="a bug"), storage_errors("store results"):
        raise TypeError("a bug")
