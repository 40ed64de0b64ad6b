"""How a call of each modq task becomes its message: the checks a producer runs, shared by the
client's tasks and the worker's (so a worker-side ``.delay`` checks the same way)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modq.errors import InvalidContent, InvalidReview
from modq.producer.task import ProducerTask, validate_job
from modq.reviews import review_outcomes
from modq.schemas import Priority, parse_priority
from modq.settings import get_settings

REVIEW_QUEUE = Priority.NORMAL


class ModerateOne(ProducerTask):
    """``modq.moderate``: one piece of content."""

    def prepare(self, arguments: dict[str, Any]) -> tuple[dict[str, Any], Priority]:
        arguments.pop("enqueued_at_s", None)
        request = validate_job(arguments)
        return request.to_message(), request.priority


class ModerateMany(ProducerTask):
    """``modq.moderate_many``: up to ``max_items_per_message`` items in one message."""

    def prepare(self, arguments: dict[str, Any]) -> tuple[dict[str, Any], Priority]:
        priority = parse_priority(arguments.get("priority", Priority.BULK))
        items = arguments.get("items")
        limit = get_settings().max_items_per_message
        if not isinstance(items, list | tuple) or not items:
            raise InvalidContent("items must be a non-empty list of jobs", field="items")
        if len(items) > limit:
            raise InvalidContent(
                f"{len(items)} items in one message, the limit is {limit}",
                field="items",
                limit=limit,
            )
        messages = []
        for position, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise InvalidContent(f"item {position} is not an object", field="items")
            if item.get("priority", priority.value) != priority.value:
                raise InvalidContent(
                    f"item {position}: priority {item['priority']!r} differs from the "
                    f"message's {priority.value!r} (one message, one queue)",
                    field="priority",
                )
            try:
                request = validate_job({**item, "priority": priority.value})
            except InvalidContent as exc:
                raise type(exc)(f"item {position}: {exc.message}", **exc.details) from exc
            messages.append(request.to_message())
        return {"items": messages, "priority": priority.value}, priority

    def cost(self, message: Mapping[str, Any]) -> int:
        return len(message["items"])


class RecordReview(ProducerTask):
    """``modq.record_review``: a human verdict on content modq decided."""

    error = InvalidReview

    def prepare(self, arguments: dict[str, Any]) -> tuple[dict[str, Any], Priority]:
        fields = {
            "label": None,
            "labels": None,
            "reviewer": None,
            "reviewed_at": None,
            "source": "task",
            **arguments,
        }
        outcomes = review_outcomes(**fields)  # raises InvalidReview on the first problem
        # plain JSON on the wire, whatever mapping or datetime the caller passed
        labels = fields["labels"]
        when = outcomes[0].reviewed_at
        fields["labels"] = None if labels is None else dict(labels)
        fields["reviewed_at"] = None if when is None else when.isoformat()
        return fields, REVIEW_QUEUE
