"""`record_review`: review outcomes from apps, checked before they are enqueued."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from modq.contract import RECORD_REVIEW
from modq.errors import UnknownContent
from modq.producer.messages import REVIEW_QUEUE, RecordReview
from tasks.app import app
from tasks.retry_policy import RETRY_POLICY

__all__ = ["REVIEW_QUEUE", "record_review"]


@app.task(
    base=RecordReview,
    name=RECORD_REVIEW,
    shared=False,
    **RETRY_POLICY,
)
def record_review(
    content_id: str,
    label: str | bool | None = None,
    labels: dict[str, Any] | None = None,
    reviewer: str | None = None,
    reviewed_at: str | datetime | None = None,
    source: str = "task",
) -> dict[str, Any]:
    """Store a human review of ``content_id``: an overall ``label`` (violation/safe) and/or
    per-category ``labels``. Content modq never decided raises ``UnknownContent``."""
    from db.reviews import ReviewRepository
    from modq.reviews import review_outcomes
    from tasks.pipeline import get_pipeline

    outcomes = review_outcomes(
        content_id,
        label=label,
        labels=labels,
        source=source,
        reviewer=reviewer,
        reviewed_at=reviewed_at,
    )
    repository = ReviewRepository(get_pipeline().database)
    if not repository.known_content_ids([outcomes[0].content_id]):
        raise UnknownContent(
            f"no moderation result for content_id {content_id!r}: review not stored",
            content_id=content_id,
        )
    counts = repository.record(outcomes)
    return {
        "content_id": outcomes[0].content_id,
        "new": counts.new,
        "unchanged": counts.unchanged,
        "changed": counts.changed,
    }
