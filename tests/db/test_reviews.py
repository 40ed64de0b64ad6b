"""Review outcomes in SQL (SQLite and PostgreSQL): idempotent, corrections win, overall verdicts."""

from datetime import UTC, datetime

from db.assignments import Assignment
from db.results import ResultRepository
from db.reviews import ReviewOutcome, ReviewRepository
from db.session import make_engine
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
