"""The moderation tasks. Producers validate before anything is enqueued; workers stay thin."""

from __future__ import annotations

import inspect
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from celery import Task
from celery.result import AsyncResult
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError

from modq.errors import RETRYABLE, BrokerUnavailable, InvalidContent
from modq.schemas import ModerationRequest, Priority, parse_priority, validate_request
from modq.settings import get_settings
from tasks.app import app
from tasks.backpressure import get_admission
from tasks.broker_queues import ENQUEUED_AT_HEADER

RETRY_BACKOFF_MAX_S = 60
MAX_RETRIES = 10


def bind_arguments(
    task: Task,
    args: Sequence[Any] | None,
    kwargs: Mapping[str, Any] | None,
    error: type[InvalidContent],
    *,
    defaults: bool = False,
) -> dict[str, Any]:
    """A call's arguments by name, checked against the task's signature (``error`` if they do
    not fit), with the signature's defaults filled in if ``defaults``."""
    try:
        bound = inspect.signature(task.run).bind(*(args or ()), **(kwargs or {}))
    except TypeError as exc:
        raise error(f"bad arguments for {task.name}: {exc}") from exc
    if defaults:
        bound.apply_defaults()
    return dict(bound.arguments)


@contextmanager
def broker_errors() -> Iterator[None]:
    """A broker or result store that cannot be reached becomes ``BrokerUnavailable``."""
    try:
        yield
    except (KombuOperationalError, RedisError) as exc:
        raise BrokerUnavailable(f"cannot reach the broker, nothing was enqueued: {exc}") from exc
    except RuntimeError as exc:  # celery's result backend gives up subscribing
        if "result store" not in str(exc):
            raise
        raise BrokerUnavailable(
            f"cannot reach the result store, nothing was enqueued: {exc}"
        ) from exc


def validate_message(fields: Mapping[str, Any]) -> ModerationRequest:
    """One job's fields as a validated request (``InvalidContent`` on the first problem)."""
    return _validate(fields)


def _validate(fields: Mapping[str, Any]) -> ModerationRequest:
    allowed = {"content_id", "content", "content_type", "user_id", "context", "priority"}
    unknown = set(fields) - allowed
    if unknown:
        raise InvalidContent(f"unknown fields {sorted(unknown)}", field=sorted(unknown)[0])
    if "content_id" not in fields or "content" not in fields:
        raise InvalidContent("content_id and content are required")
    return validate_request(**fields, max_content_chars=get_settings().max_content_chars)


class _ProducerTask(Task):
    """Validates and routes on the producer side: a bad job raises before it is enqueued."""

    abstract = True

    def _prepare(self, arguments: dict[str, Any]) -> tuple[dict[str, Any], Priority]:
        raise NotImplementedError

    def _cost(self, message: Mapping[str, Any]) -> int:
        """Jobs one message carries, charged against its queue's bound."""
        return 1

    def apply_async(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> AsyncResult:
        message, priority = self._prepare(bind_arguments(self, args, kwargs, InvalidContent))
        queue = options.setdefault("queue", priority.value)
        admission = get_admission(self.app)
        if admission is not None and not options.get("retries"):  # a retry was admitted once
            admission.admit(getattr(queue, "name", str(queue)), self._cost(message))
        message["enqueued_at_s"] = time.time()
        # the same stamp as a header: `modq metrics serve` reads a queue's oldest message
        # without decoding its body
        options["headers"] = {
            **(options.get("headers") or {}),
            ENQUEUED_AT_HEADER: message["enqueued_at_s"],
        }
        with broker_errors():
            return super().apply_async((), message, **options)


class ModerateOne(_ProducerTask):
    def _prepare(self, arguments: dict[str, Any]) -> tuple[dict[str, Any], Priority]:
        arguments.pop("enqueued_at_s", None)
        request = _validate(arguments)
        return request.to_message(), request.priority


class ModerateMany(_ProducerTask):
    def _prepare(self, arguments: dict[str, Any]) -> tuple[dict[str, Any], Priority]:
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
            try:
                request = _validate({**item, "priority": priority.value})
            except InvalidContent as exc:
                raise type(exc)(f"item {position}: {exc.message}", **exc.details) from exc
            messages.append(request.to_message())
        return {"items": messages, "priority": priority.value}, priority

    def _cost(self, message: Mapping[str, Any]) -> int:
        return len(message["items"])


_RETRY = {
    "autoretry_for": RETRYABLE,
    "retry_backoff": True,
    "retry_backoff_max": RETRY_BACKOFF_MAX_S,
    "max_retries": MAX_RETRIES,
}


@app.task(base=ModerateOne, name="modq.moderate", **_RETRY)
def moderate(
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

    request = _validate(
        {
            "content_id": content_id,
            "content": content,
            "content_type": content_type,
            "user_id": user_id,
            "context": context,
            "priority": priority,
        }
    )
    (result,), shadows = get_pipeline().moderate_routed([request], enqueued_at_s=enqueued_at_s)
    if shadows:
        from tasks.shadow import publish_shadow_work

        publish_shadow_work(shadows)
    return result.to_dict()


@app.task(base=ModerateMany, name="modq.moderate_many", **_RETRY)
def moderate_many(
    items: list[dict[str, Any]], priority: str = "bulk", enqueued_at_s: float | None = None
) -> list[dict[str, Any]]:
    """Moderate many items carried in one message (one result per item, in order)."""
    from tasks.pipeline import get_pipeline

    requests = [_validate({**item, "priority": priority}) for item in items]
    results, shadows = get_pipeline().moderate_routed(requests, enqueued_at_s=enqueued_at_s)
    if shadows:
        from tasks.shadow import publish_shadow_work

        publish_shadow_work(shadows)
    return [r.to_dict() for r in results]
