"""One review label, checked (the rules live in ``modq.reviews``, which producers use too)."""

from modq.reviews import (
    CATEGORIES,
    OVERALL,
    SAFE_WORDS,
    VIOLATION_WORDS,
    ReviewOutcome,
    check_category,
    parse_label,
    parse_time,
    review_outcomes,
)

__all__ = [
    "CATEGORIES",
    "OVERALL",
    "SAFE_WORDS",
    "VIOLATION_WORDS",
    "ReviewOutcome",
    "check_category",
    "parse_label",
    "parse_time",
    "review_outcomes",
]
