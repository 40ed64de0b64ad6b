"""The tasks an app sends, on the client's app. Their bodies run on a modq worker only; here
they are the producer side: arguments checked, queue chosen, nothing heavy imported."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from modq.client.app import app
from modq.contract import MODERATE, MODERATE_MANY, RECORD_REVIEW
from modq.producer.messages import ModerateMany, ModerateOne, RecordReview


def _runs_on_a_worker(name: str) -> RuntimeError:
    return RuntimeError(f"{name} runs on a modq worker; send it with .delay() or .apply_async()")


@app.task(base=ModerateOne, name=MODERATE, shared=False)
def moderate(
    content_id: str,
    content: str,
    content_type: str = "text",
    user_id: str | None = None,
    context: dict[str, Any] | None = None,
    priority: str = "normal",
    enqueued_at_s: float | None = None,
) -> dict[str, Any]:
    """Moderate one piece of content; the result is a ``ModerationResult`` as a dict."""
    raise _runs_on_a_worker(MODERATE)


@app.task(base=ModerateMany, name=MODERATE_MANY, shared=False)
def moderate_many(
    items: list[dict[str, Any]], priority: str = "bulk", enqueued_at_s: float | None = None
) -> list[dict[str, Any]]:
    """Moderate many items carried in one message (one result per item, in order)."""
    raise _runs_on_a_worker(MODERATE_MANY)


@app.task(base=RecordReview, name=RECORD_REVIEW, shared=False)
def record_review(
    content_id: str,
    label: str | bool | None = None,
    labels: dict[str, Any] | None = None,
    reviewer: str | None = None,
    reviewed_at: str | datetime | None = None,
    source: str = "task",
) -> dict[str, Any]:
    """Store a human review of ``content_id``: an overall ``label`` (violation/safe) and/or
    per-category ``labels``."""
    raise _runs_on_a_worker(RECORD_REVIEW)
