"""`record_review`: review outcomes from apps, checked before they are enqueued."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from celery import Task
from celery.result import AsyncResult

from modq.errors import InvalidReview, StorageUnavailable, UnknownContent
from modq.schemas import Priority
from tasks.app import app
from tasks.moderate import bind_arguments, broker_errors

REVIEW_QUEUE = Priority.NORMAL.value


class _ReviewTask(Task):
    """Validates on the producer side: a bad label raises before anything is enqueued."""

    abstract = True

    def apply_async(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> AsyncResult:
        from reviews.labels import review_outcomes

        arguments = bind_arguments(self, args, kwargs, InvalidReview, defaults=True)
        review_outcomes(**arguments)  # raises InvalidReview on the first problem
        options.setdefault("queue", REVIEW_QUEUE)
        with broker_errors():
            return super().apply_async((), arguments, **options)


@app.task(
    base=_ReviewTask,
    name="modq.record_review",
    autoretry_for=(StorageUnavailable,),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=10,
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
    from reviews.labels import review_outcomes
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
