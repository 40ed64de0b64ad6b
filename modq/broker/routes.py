"""Celery's own router (``task_routes``) for modq's tasks: the job's ``priority`` argument picks
its queue, so ``send_task``, ``celery call`` and Flower's task form land where modq's producer
would put the job."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from modq.contract import DELIVER_WEBHOOK, QUEUES, WEBHOOK_QUEUE, priority_of


def route_by_priority(
    name: str,
    args: Sequence[Any] | None,
    kwargs: Mapping[str, Any] | None,
    options: Mapping[str, Any] | None,
    task: Any = None,
    **_: Any,
) -> dict[str, str] | None:
    """``{"queue": priority}`` for a modq task; None (Celery's next router or its default
    queue) for any other task or an unknown priority, which the worker then refuses."""
    if name == DELIVER_WEBHOOK:  # never on a moderation queue (docs/api.md, webhooks)
        return {"queue": WEBHOOK_QUEUE}
    priority = priority_of(name, args, kwargs)
    if priority in QUEUES:
        return {"queue": priority}
    return None
