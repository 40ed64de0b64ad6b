"""Review outcomes in SQL (SQLite and PostgreSQL): idempotent, corrections win, overall verdicts."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone

import pytest

from db.assignments import Assignment
from db.results import ResultRepository
from db.reviews import RecordCounts, ReviewOutcome, ReviewRepository
from db.session import make_engine
from modq.errors import StorageUnavailable
from tests.factories import make_result


def test_record_is_idempotent_and_a_correction_replaces_the_label(database_url: str) -> None:
    engine = make_engine(database_url)
    reviews = ReviewRepository(engine)
    first = [
        ReviewOutcome("c-1", "any", True, "csv"),
        ReviewOutcome("c-2", "spam", False, "csv", "ana"),
    ]
    counts = reviews.record(first)
    assert (counts.new, counts.unchanged, counts.changed) == (2, 0, 0)
    counts = reviews.record(first)
    assert (counts.new, counts.unchanged, counts.changed) == (0, 2, 0)
    counts = reviews.record([ReviewOutcome("c-2", "spam", True, "task", "bo")])
    assert (counts.new, counts.unchanged, counts.changed) == (0, 0, 1)
    (corrected,) = reviews.outcomes("c-2")
    assert corrected.violation is True and corrected.reviewer == "bo"
    assert corrected.source == "task"
    engine.dispose()


def test_review_times_are_stored_and_read_back_in_utc(database_url: str) -> None:
    engine = make_engine(database_url)
    reviews = ReviewRepository(engine)
    two_hours_east = timezone(timedelta(hours=2))
    reviews.record(
        [
            ReviewOutcome(
                "c-1",
                "any",
                True,
                "csv",
                reviewed_at=datetime(2026, 11, 21, 10, 0, tzinfo=two_hours_east),
            ),
            ReviewOutcome("c-2", "any", True, "csv", reviewed_at=datetime(2026, 11, 21, 10, 0)),
        ]
    )
    (east,) = reviews.outcomes("c-1")
    assert east.reviewed_at == datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
    assert east.reviewed_at is not None and east.reviewed_at.utcoffset() == timedelta(0)
    (naive,) = reviews.outcomes("c-2")  # a zone-less time is taken as UTC
    assert naive.reviewed_at == datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    engine.dispose()


def test_labels_for_gives_one_overall_verdict_per_content(database_url: str) -> None:
    engine = make_engine(database_url)
    reviews = ReviewRepository(engine)
    reviews.record(
        [
            ReviewOutcome("overall-safe", "any", False, "csv"),
            ReviewOutcome("overall-safe", "spam", True, "csv"),  # the overall label wins
            ReviewOutcome("one-category-bad", "spam", False, "csv"),
            ReviewOutcome("one-category-bad", "violence", True, "csv"),
            ReviewOutcome("all-clean", "spam", False, "csv"),
            ReviewOutcome("all-clean", "adult", False, "csv"),
        ]
    )
    ids = ["overall-safe", "one-category-bad", "all-clean", "never-reviewed"]
    assert reviews.labels_for(ids) == {
        "overall-safe": False,
        "one-category-bad": True,
        "all-clean": False,
    }
    engine.dispose()


def test_known_content_ids_come_from_results_and_assignments_in_chunks(database_url: str) -> None:
    engine = make_engine(database_url)
    results = ResultRepository(engine)
    results.store_many([make_result(f"r-{i}") for i in range(600)])
    assignment = Assignment(
        "exp", "control", True, "content:shadow-only", "shadow-only", "allow", {}, 1.0,
        "m", "1", "v1", False, datetime.now(UTC),
    )  # fmt: skip
    results.store_many([], [assignment])
    asked = [f"r-{i}" for i in range(0, 1200, 2)] + ["shadow-only", "nobody"]
    known = ReviewRepository(engine).known_content_ids(asked)
    assert known == {f"r-{i}" for i in range(0, 600, 2)} | {"shadow-only"}
    engine.dispose()


def test_concurrent_writers_of_the_same_labels_neither_fail_nor_double_count(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    reviews = ReviewRepository(engine)
    outcomes = [ReviewOutcome(f"c-{i}", "spam", i % 2 == 0, "csv") for i in range(300)]
    writers = 4
    start = threading.Barrier(writers)

    def write() -> RecordCounts:
        start.wait()
        return reviews.record(outcomes)

    with ThreadPoolExecutor(writers) as pool:
        results = list(pool.map(lambda _: write(), range(writers)))
    assert sum(r.new for r in results) == 300  # each label inserted by exactly one writer
    assert all(r.new + r.unchanged == 300 and r.changed == 0 for r in results)
    assert reviews.labels_for(f"c-{i}" for i in range(300)) == {
        f"c-{i}": i % 2 == 0 for i in range(300)
    }
    engine.dispose()


def test_a_database_that_is_down_is_storage_unavailable() -> None:
    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    reviews = ReviewRepository(engine)
    with pytest.raises(StorageUnavailable):
        reviews.record([ReviewOutcome("c-1", "any", True, "csv")])
    with pytest.raises(StorageUnavailable):
        reviews.known_content_ids(["c-1"])
    with pytest.raises(StorageUnavailable):
        reviews.labels_for(["c-1"])
    engine.dispose()
