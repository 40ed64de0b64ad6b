"""The moderation tasks as workers run them. Producers check and route in the shared base
classes (``modq.producer.messages``); a job that skipped them (a stock ``send_task``, ``celery
call``) is checked again here, fails with the same typed error, and one that came in on the
wrong queue is forwarded to the queue its priority names before it runs."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from celery import Task
from celery.exceptions import Ignore

from modq.contract import MODERATE, MODERATE_MANY, QUEUES
from modq.errors import InvalidContent
from modq.producer.messages import ModerateMany, ModerateOne
from modq.producer.task import validate_job
from modq.schemas import ModerationRequest
from tasks.app import app
from tasks.retry_policy import RETRY_POLICY

log = logging.getLogger(__name__)


def validate_message(fields: object) -> ModerationRequest:
    """One job's fields as the worker receives them, validated again as the producer does
    (``InvalidContent`` on the first problem, never a bare ``TypeError``): for messages from
    producers that skipped the check (``send_task``, ``celery call``, a foreign client)."""
    if not isinstance(fields, Mapping):
        raise InvalidContent(f"a job is an object of fields, got {type(fields).__name__}")
    return validate_job(fields)


def forward_if_misrouted(task: Task, priority: str, message: dict[str, Any]) -> None:
    """A job that arrived on another queue than its priority's (a stock producer that set the
    wrong ``queue=``) is sent on to the right one, under the same task id, and this delivery
    ends without a result: urgent work never waits behind bulk work it was mixed into."""
    delivery = task.request.delivery_info or {}
    arrived_on = delivery.get("routing_key") or delivery.get("queue")
    if not arrived_on or arrived_on == priority or task.request.is_eager:
        return
    if arrived_on not in QUEUES:
        return  # a chunk or a canvas step run inside another task
    log.warning(
        "modq: %s job %s arrived on queue %r, forwarded to %r: send it with queue=<priority>",
        task.name,
        task.request.id,
        arrived_on,
        priority,
    )
    task.apply_async(kwargs=message, queue=priority, task_id=task.request.id)
    raise Ignore()


@app.task(base=ModerateOne, name=MODERATE, bind=True, shared=False, **RETRY_POLICY)
def moderate(
    self: Task,
    content_id: str,
    content: str,
    content_type: str = "text",
    user_id: str | None = None,
    context: dict[str, Any] | None = None,
    priority: str = "normal",
    enqueued_at_s: float | None = None,
) -> dict[str, Any]:
    """Moderate one piece of content; returns a ``ModerationResult`` as a dict."""
    from tasks.pipeline import get_pipeline

    request = validate_message(
        {
            "content_id": content_id,
            "content": content,
            "content_type": content_type,
            "user_id": user_id,
            "context": context,
            "priority": priority,
        }
    )
    forward_if_misrouted(self, request.priority.value, request.to_message())
    (result,), shadows = get_pipeline().moderate_routed([request], enqueued_at_s=enqueued_at_s)
    if shadows:
        from tasks.shadow import publish_shadow_work

        publish_shadow_work(shadows)
    return result.to_dict()


@app.task(base=ModerateMany, name=MODERATE_MANY, bind=True, shared=False, **RETRY_POLICY)
def moderate_many(
    self: Task,
    items: list[dict[str, Any]],
    priority: str = "bulk",
    enqueued_at_s: float | None = None,
) -> list[dict[str, Any]]:
    """Moderate many items carried in one message (one result per item, in order)."""
    from tasks.pipeline import get_pipeline

    message, checked_priority = self.prepare({"items": items, "priority": priority})
    forward_if_misrouted(self, checked_priority.value, message)
    requests = [validate_message(item) for item in message["items"]]
    results, shadows = get_pipeline().moderate_routed(requests, enqueued_at_s=enqueued_at_s)
    if shadows:
        from tasks.shadow import publish_shadow_work

        publish_shadow_work(shadows)
    return [r.to_dict() for r in results]
