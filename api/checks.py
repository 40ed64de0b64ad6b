"""A request's content checked before anything else is asked of the fleet: the same rules the
producer applies when it enqueues (``modq.producer``: empty, too long, invalid UTF-8, unknown
fields), run first, so a bad input is 422 even while no worker is ready (not 503)."""

from __future__ import annotations

from typing import Any

import modq
from modq.errors import TooLarge
from modq.settings import Settings

_ANY_ID = "content-id"  # an absent content_id is made at enqueue; any id passes the rules


def check_job(job: dict[str, Any]) -> None:
    """InvalidContent (422) if ``modq.moderate`` would refuse ``job``."""
    modq.moderate.prepare({**job, "content_id": job.get("content_id") or _ANY_ID})


def check_items(settings: Settings, items: list[dict[str, Any]], priority: str) -> None:
    """TooLarge (413) past ``max_items_per_message``; InvalidContent (422) if
    ``modq.moderate_many`` would refuse an item."""
    limit = settings.max_items_per_message
    if len(items) > limit:
        raise TooLarge(f"{len(items)} items, the limit is {limit}", field="items", limit=limit)
    filled = [{**item, "content_id": item.get("content_id") or _ANY_ID} for item in items]
    modq.moderate_many.prepare({"items": filled, "priority": priority})


def check_review(review: dict[str, Any]) -> None:
    """InvalidReview (422) if ``modq.record_review`` would refuse ``review``."""
    modq.record_review.prepare({**review, "source": "api"})
