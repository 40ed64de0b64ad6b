"""The task contract every producer follows: task names, where each argument sits, and which
queue a job belongs on. Stock Celery producers follow it too (docs/task-contract.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from modq.schemas import Priority

MODERATE = "modq.moderate"
MODERATE_MANY = "modq.moderate_many"
RECORD_REVIEW = "modq.record_review"
MODERATE_SHADOW = "modq.moderate_shadow"
DELIVER_WEBHOOK = "modq.deliver_webhook"  # a job's result POSTed to its callback_url (a link)
WEBHOOK_QUEUE = "webhooks"  # deliveries only: consumed by `modq webhooks`, never by moderators
STARMAP = "celery.starmap"  # what Celery's `chunks` sends: many calls of one task

# task name -> (the position of its `priority` argument, the priority when none is given);
# a review or a shadow job has no priority argument and always goes to the same queue
PRIORITY_ARGUMENT: dict[str, tuple[int | None, Priority]] = {
    MODERATE: (5, Priority.NORMAL),
    MODERATE_MANY: (1, Priority.BULK),
    RECORD_REVIEW: (None, Priority.NORMAL),
    MODERATE_SHADOW: (None, Priority.BULK),
}
QUEUES = tuple(p.value for p in Priority)  # drain order: urgent, normal, bulk


def priority_of(
    task_name: str, args: Sequence[Any] | None, kwargs: Mapping[str, Any] | None
) -> str | None:
    """The priority (queue) a call of a modq task asks for, as given (not checked): the
    ``priority`` argument by name or position, else the task's default. None for a task that
    is not modq's."""
    if task_name == STARMAP or _is_starmap_call(args, kwargs):
        return _starmap_priority(kwargs or {})
    spec = PRIORITY_ARGUMENT.get(task_name)
    if spec is None:
        return None
    position, default = spec
    if position is None:
        return default.value
    if kwargs and "priority" in kwargs:
        value = kwargs["priority"]
    elif args is not None and len(args) > position:
        value = args[position]
    else:
        return default.value
    return value if isinstance(value, str) else None


def _is_starmap_call(args: Sequence[Any] | None, kwargs: Mapping[str, Any] | None) -> bool:
    """Celery routes a ``starmap`` under its inner task's name (``route_name``): its call is
    known by its shape, the keyword arguments ``task`` and ``it`` only."""
    return not args and kwargs is not None and set(kwargs) == {"task", "it"}


def _starmap_priority(kwargs: Mapping[str, Any]) -> str | None:
    """A chunk's queue: the one priority all its calls share (None if they differ)."""
    task = kwargs.get("task")
    name = task.get("task") if isinstance(task, Mapping) else None
    calls = kwargs.get("it")
    if not isinstance(name, str) or name == STARMAP or not isinstance(calls, Sequence):
        return None
    wanted = {priority_of(name, call if isinstance(call, Sequence) else (), None) for call in calls}
    return wanted.pop() if len(wanted) == 1 else None
