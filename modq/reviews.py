"""Review outcomes and their labels, checked: the words people write in review tools, mapped to
True/False. Pure (layer 0): producers check a review before it is enqueued."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from modq.categories import CANONICAL_CATEGORIES
from modq.errors import InvalidReview
from modq.schemas import require_text

OVERALL = "any"  # the category of an overall violation / safe verdict
MAX_ID_CHARS = 512  # the columns' lengths (db/models.py)
MAX_REVIEWER_CHARS = 256
MAX_SOURCE_CHARS = 256


@dataclass(frozen=True, slots=True)
class ReviewOutcome:
    """One reviewer verdict on one category of one content id."""

    content_id: str
    category: str  # a canonical category, or "any"
    violation: bool
    source: str
    reviewer: str | None = None
    reviewed_at: datetime | None = None


VIOLATION_WORDS = frozenset({"violation", "1", "true", "yes", "y"})
SAFE_WORDS = frozenset({"safe", "0", "false", "no", "n"})
CATEGORIES = (*CANONICAL_CATEGORIES, OVERALL)


def parse_label(value: object, *, field: str = "label") -> bool | None:
    """violation/safe, 1/0, true/false, yes/no (or a bool) → True/False; blank → None (this
    category was not reviewed); anything else is ``InvalidReview``."""
    if isinstance(value, bool):
        return value
    if value is None:
        return None
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if not isinstance(value, str):
        raise InvalidReview(f"{field}: expected violation/safe, got {value!r}", field=field)
    word = value.strip().lower()
    if not word:
        return None
    if word in VIOLATION_WORDS:
        return True
    if word in SAFE_WORDS:
        return False
    raise InvalidReview(
        f"{field}: {value!r} is not a label (violation/safe, 1/0, true/false, yes/no)",
        field=field,
    )


def check_category(name: str) -> str:
    if name not in CATEGORIES:
        raise InvalidReview(
            f"unknown category {name!r}; known: {', '.join(CATEGORIES)}", field="category"
        )
    return name


def parse_time(value: object) -> datetime | None:
    """ISO-8601 text or a datetime (a zone-less time is read as UTC); blank → None."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str):
        raise InvalidReview(f"reviewed_at must be ISO-8601 text, got {value!r}")
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidReview(f"reviewed_at {value!r} is not an ISO-8601 time") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def review_text(field: str, value: object, max_chars: int) -> str:
    """Non-empty text that SQL can store: UTF-8, no NUL, at most ``max_chars``."""
    if not isinstance(value, str):
        raise InvalidReview(f"{field} must be text, got {type(value).__name__}", field=field)
    if "\x00" in value:
        raise InvalidReview(f"{field} holds a NUL character", field=field)
    return require_text(field, value, max_chars, error=InvalidReview, blank="is missing")


def review_outcomes(
    content_id: object,
    *,
    label: object = None,
    labels: Mapping[str, object] | None = None,
    source: str,
    reviewer: object = None,
    reviewed_at: object = None,
) -> list[ReviewOutcome]:
    """The outcomes of one review: an overall ``label`` and/or per-category ``labels``;
    ``InvalidReview`` on the first problem, and when nothing at all is labelled."""
    content_id = review_text("content_id", content_id, MAX_ID_CHARS)
    if reviewer is not None and reviewer != "":  # a blank reviewer column: nobody named
        reviewer = review_text("reviewer", reviewer, MAX_REVIEWER_CHARS)
    source = review_text("source", source, MAX_SOURCE_CHARS)
    when = parse_time(reviewed_at)
    if labels is not None and not isinstance(labels, Mapping):
        raise InvalidReview(
            f"labels must be an object of category -> label, got {type(labels).__name__}",
            field="labels",
        )
    verdicts: dict[str, bool] = {}
    overall = parse_label(label)
    if overall is not None:
        verdicts[OVERALL] = overall
    for category, value in (labels or {}).items():
        verdict = parse_label(value, field=check_category(category))
        if verdict is not None:
            verdicts[category] = verdict
    if not verdicts:
        raise InvalidReview(f"no label for {content_id!r}", field="label")
    return [
        ReviewOutcome(content_id.strip(), category, verdict, source, reviewer or None, when)
        for category, verdict in verdicts.items()
    ]
