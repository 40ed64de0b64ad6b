"""Importing review files (SQLite and PostgreSQL): duplicates, unknown ids and malformed rows
are each handled and reported; a bad header stores nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from db.results import ResultRepository
from db.reviews import ReviewRepository
from db.session import make_engine
from modq.errors import InvalidReview
from reviews.csv_import import import_reviews
from tests.factories import make_result


@pytest.fixture
def reviews(database_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(database_url)
    ResultRepository(engine).store_many([make_result(f"c-{i}") for i in range(10)])
    yield ReviewRepository(engine)
    engine.dispose()


def _csv(tmp_path: Path, text: str, name: str = "reviews.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_file_imported_twice_changes_nothing_the_second_time(
    reviews: ReviewRepository, tmp_path: Path
) -> None:
    path = _csv(tmp_path, "content_id,label\nc-1,violation\nc-2,safe\nc-3,violation\n")
    first = import_reviews(path, reviews)
    assert first.clean and (first.rows, first.counts.new) == (3, 3)
    again = import_reviews(path, reviews)
    assert again.clean and (again.counts.new, again.counts.unchanged) == (0, 3)
    assert reviews.labels_for(["c-1", "c-2", "c-3"]) == {"c-1": True, "c-2": False, "c-3": True}


def test_repeats_in_one_file_and_corrections_are_counted(
    reviews: ReviewRepository, tmp_path: Path
) -> None:
    import_reviews(_csv(tmp_path, "content_id,label\nc-1,safe\n"), reviews)
    report = import_reviews(
        _csv(tmp_path, "content_id,label,reviewer\nc-1,violation,ana\nc-2,safe,bo\nc-2,safe,bo\n"),
        reviews,
    )
    assert report.repeated_in_file == 1
    assert (report.counts.new, report.counts.changed) == (1, 1)
    assert reviews.labels_for(["c-1"]) == {"c-1": True}
    assert reviews.outcomes("c-1")[0].reviewer == "ana"


def test_unknown_ids_are_reported_with_their_lines_and_not_stored(
    reviews: ReviewRepository, tmp_path: Path
) -> None:
    report = import_reviews(
        _csv(tmp_path, "content_id,label\nc-1,violation\nghost-1,safe\nc-2,safe\nghost-2,safe\n"),
        reviews,
    )
    assert not report.clean
    assert report.unknown == [(3, "ghost-1"), (5, "ghost-2")]
    assert report.counts.new == 2
    assert reviews.labels_for(["ghost-1", "ghost-2"]) == {}
    assert "unknown content ids, not stored: ghost-1 (line 3), ghost-2 (line 5)" in report.lines()


def test_malformed_rows_are_reported_and_the_good_rows_land(
    reviews: ReviewRepository, tmp_path: Path
) -> None:
    text = (
        "content_id,label,reviewed_at\n"
        "c-1,violation,2026-11-20T10:00:00Z\n"
        "c-2,maybe,\n"  # not a label
        ",safe,\n"  # no id
        "c-3,safe,yesterday\n"  # not a time
        "c-4,safe\n"  # a field short
        "c-5,,\n"  # nothing labelled
        "c-6,safe,2026-11-21\n"
    )
    report = import_reviews(_csv(tmp_path, text), reviews)
    assert [line for line, _ in report.malformed] == [3, 4, 5, 6, 7]
    reasons = dict(report.malformed)
    assert "'maybe' is not a label" in reasons[3]
    assert "content_id is missing" in reasons[4]
    assert "not an ISO-8601 time" in reasons[5]
    assert "2 fields, the header has 3" in reasons[6]
    assert "no label" in reasons[7]
    assert report.counts.new == 2
    assert reviews.labels_for(["c-1", "c-6"]) == {"c-1": True, "c-6": False}
    assert reviews.outcomes("c-1")[0].reviewed_at is not None


def test_per_category_columns(reviews: ReviewRepository, tmp_path: Path) -> None:
    text = "content_id,spam,violence,hate_speech\nc-1,1,0,\nc-2,no,no,no\nc-3,,yes,\n"
    report = import_reviews(_csv(tmp_path, text), reviews)
    assert report.clean and report.counts.new == 6  # blanks are not reviews
    assert reviews.labels_for(["c-1", "c-2", "c-3"]) == {"c-1": True, "c-2": False, "c-3": True}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("content_id,label,colour\nc-1,safe,red\n", "unknown columns \\['colour'\\]"),
        ("id,label\nc-1,safe\n", "no content_id column"),
        ("", "header row is required"),
        ("content_id,label,label\nc-1,safe,safe\n", "columns repeat"),
        ("content_id,label\nc-1,safe\nc-2," + "x" * 200_000 + "\n", "line 3: field larger"),
    ],
)
def test_a_bad_header_or_bad_csv_stores_nothing(
    reviews: ReviewRepository, tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(InvalidReview, match=message):
        import_reviews(_csv(tmp_path, text), reviews)
    assert reviews.labels_for(["c-1"]) == {}


def test_a_file_that_is_not_utf8_is_refused_before_anything_is_stored(
    reviews: ReviewRepository, tmp_path: Path
) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("content_id,label\nc-1,safe\nc-2,s\xe9curit\xe9\n".encode("latin-1"))
    with pytest.raises(InvalidReview, match="not UTF-8"):
        import_reviews(path, reviews)
    assert reviews.labels_for(["c-1"]) == {}


class _CountingRepository(ReviewRepository):
    """The real repository, counting its id look-ups (one per batch, never one per row)."""

    lookups = 0

    def known_content_ids(self, content_ids):  # type: ignore[no-untyped-def]
        self.lookups += 1
        return super().known_content_ids(content_ids)


def test_batches_and_labels_the_file_repeats_or_corrects(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("reviews.csv_import.BATCH_ROWS", 3)
    engine = make_engine(database_url)
    ResultRepository(engine).store_many([make_result(f"c-{i}") for i in range(10)])
    reviews = _CountingRepository(engine)
    text = (
        "content_id,label\n"
        "c-0,violation\nc-1,safe\nc-0,violation\n"  # batch 1: an exact repeat
        "c-2,safe\nc-1,violation\nc-3,safe\n"  # batch 2: c-1 corrected by a later row
        "c-3,violation\nghost,safe\nc-4,safe\n"  # batch 3
        "c-0,violation\nghost,safe\n"  # batch 4: the unknown id reported on each line
    )
    done: list[int] = []
    report = import_reviews(_csv(tmp_path, text), reviews, progress=done.append)
    counts = report.counts
    assert (counts.new, counts.unchanged, counts.changed) == (5, 0, 0)  # the last word only
    assert report.repeated_in_file == 5  # lines 2, 3, 4, 7, 9: labelled again further down
    assert report.unknown == [(9, "ghost"), (12, "ghost")]
    assert reviews.labels_for([f"c-{i}" for i in range(5)]) == {
        "c-0": True, "c-1": True, "c-2": False, "c-3": True, "c-4": False,
    }  # fmt: skip
    assert done == [3, 6, 9, 11]  # rows read, after each stored batch
    assert reviews.lookups == 4  # ids checked once per batch, not once per row
    again = import_reviews(_csv(tmp_path, text), reviews)
    assert (again.counts.new, again.counts.unchanged, again.counts.changed) == (0, 5, 0)
    engine.dispose()


def test_many_unknown_ids_are_all_counted_and_the_first_20_named(
    reviews: ReviewRepository, tmp_path: Path
) -> None:
    rows = "".join(f"ghost-{i},safe\n" for i in range(25))
    report = import_reviews(_csv(tmp_path, "content_id,label\n" + rows), reviews)
    assert len(report.unknown) == 25 and report.counts.new == 0
    listed = report.lines()[1]
    assert "ghost-19 (line 21)" in listed and "ghost-20" not in listed
    assert listed.endswith("and 5 more")


def test_an_overall_label_beside_category_columns(
    reviews: ReviewRepository, tmp_path: Path
) -> None:
    text = "content_id,label,spam,reviewer\nc-1,safe,1,ana\nc-2,,0,bo\n"
    report = import_reviews(_csv(tmp_path, text), reviews, source="vendor-x")
    assert report.clean and report.counts.new == 3
    assert {(o.category, o.violation) for o in reviews.outcomes("c-1")} == {
        ("any", False), ("spam", True),
    }  # fmt: skip
    assert {o.source for o in reviews.outcomes("c-1")} == {"vendor-x"}
    assert reviews.labels_for(["c-1", "c-2"]) == {"c-1": False, "c-2": False}
