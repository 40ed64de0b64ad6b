"""The label words people write, and what is refused."""

import pytest

from modq.errors import InvalidReview
from reviews.labels import parse_label, review_outcomes


@pytest.mark.parametrize(
    ("word", "verdict"),
    [("violation", True), ("SAFE", False), (" 1 ", True), ("0", False), ("yes", True),
     ("no", False), ("true", True), ("False", False), (True, True), ("", None), (None, None)],
)  # fmt: skip
def test_label_words(word: object, verdict: bool | None) -> None:
    assert parse_label(word) is verdict


def test_a_review_needs_an_id_a_label_and_known_categories() -> None:
    outcomes = review_outcomes("c-1", labels={"spam": "yes", "adult": ""}, source="t")
    assert [(o.category, o.violation) for o in outcomes] == [("spam", True)]
    with pytest.raises(InvalidReview, match="unknown category 'gore'"):
        review_outcomes("c-1", labels={"gore": "yes"}, source="t")
    with pytest.raises(InvalidReview, match="no label"):
        review_outcomes("c-1", source="t")
    with pytest.raises(InvalidReview, match="content_id is missing"):
        review_outcomes("  ", label="safe", source="t")
    with pytest.raises(InvalidReview, match="not a label"):
        review_outcomes("c-1", label="dunno", source="t")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"content_id": 5}, "content_id must be text, got int"),
        ({"content_id": "a\ud800b"}, "content_id is not valid UTF-8"),
        ({"content_id": "a\x00b"}, "content_id holds a NUL"),
        ({"content_id": "x" * 513}, "content_id has 513 characters"),
        ({"reviewer": "r\udc80"}, "reviewer is not valid UTF-8"),
        ({"reviewer": "r" * 257}, "reviewer has 257 characters"),
        ({"source": "s" * 257}, "source has 257 characters"),
    ],
)
def test_review_text_is_what_sql_can_store(fields, message):
    arguments = {"content_id": "c1", "label": "safe", "source": "task", **fields}
    with pytest.raises(InvalidReview, match=message):
        review_outcomes(**arguments)
