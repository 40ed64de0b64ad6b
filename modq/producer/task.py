"""The one producer path of every modq task: validate, route by priority, admit, redact, send.

Every way a modq task is sent from Python goes through ``ProducerTask.apply_async``: ``.delay``,
``.apply_async``, a signature's ``apply_async`` and Celery's canvas (``group``, ``chain``,
``chord``, ``chunks``). A bad job raises a ``modq.errors`` type before anything is enqueued:
a complete signature (``moderate.s(...)``) is checked when it is made, so a ``group`` holding
one bad job raises before any of its jobs is sent.
"""

from __future__ import annotations

import inspect
import json
import math
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from celery import Task, current_app
from celery.canvas import Signature, maybe_signature
from celery.result import AsyncResult
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError

from modq.broker.backpressure import CHARGED_ITEMS_HEADER, CHARGED_QUEUE_HEADER, get_admission
from modq.broker.config import check_schedule
from modq.broker.queues import ENQUEUED_AT_HEADER
from modq.broker.urls import check_broker_url
from modq.errors import BrokerUnavailable, InvalidContent
from modq.schemas import ModerationRequest, Priority, parse_priority, validate_request
from modq.settings import get_settings

JOB_FIELDS = frozenset({"content_id", "content", "content_type", "user_id", "context", "priority"})
MESSAGE_PRIORITIES = range(10)  # a message's priority *within* its queue (Redis: 0 is first)


def bind_arguments(
    task: Task,
    args: Sequence[Any] | None,
    kwargs: Mapping[str, Any] | None,
    error: type[InvalidContent],
    *,
    defaults: bool = False,
    partial: bool = False,
) -> dict[str, Any]:
    """A call's arguments by name, checked against the task's signature (``error`` if they do
    not fit), with the signature's defaults filled in if ``defaults``."""
    signature = inspect.signature(task.run)
    try:
        if partial:
            bound = signature.bind_partial(*(args or ()), **(kwargs or {}))
        else:
            bound = signature.bind(*(args or ()), **(kwargs or {}))
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


def validate_job(fields: Mapping[str, Any]) -> ModerationRequest:
    """One job's fields as a validated request (``InvalidContent`` on the first problem)."""
    unknown = set(fields) - JOB_FIELDS
    if unknown:
        names = sorted(map(repr, unknown))  # keys need not be text, nor comparable
        raise InvalidContent(f"unknown fields [{', '.join(names)}]", field=min(map(str, unknown)))
    if "content_id" not in fields or "content" not in fields:
        raise InvalidContent("content_id and content are required")
    settings = get_settings()
    try:
        return validate_request(
            **fields,
            max_content_chars=settings.max_content_chars,
            max_context_bytes=settings.max_context_bytes,
        )
    except TypeError as exc:  # a field name that is not text (a mapping with int keys)
        raise InvalidContent(f"bad job fields: {exc}") from exc


def job_priority_option(value: object) -> tuple[int | None, Priority | None]:
    """Celery's ``priority=`` option, read the way modq means it: an int 0–9 orders messages
    within their queue; a queue name (``"urgent"``) is the job's priority. Anything else is
    ``InvalidContent``: a number is never silently taken for urgency."""
    if value is None:
        return None, None
    if isinstance(value, str):
        return None, parse_priority(value)
    if isinstance(value, int) and not isinstance(value, bool) and value in MESSAGE_PRIORITIES:
        return value, None
    raise InvalidContent(
        f"priority={value!r}: a message priority is an int 0-9 (0 first on Redis); the job's "
        "urgency is its priority argument: urgent, normal or bulk",
        field="priority",
    )


# room in a broker item beside the body: the envelope's properties and headers (kombu's Redis
# item is a JSON envelope holding the body base64-encoded)
ENVELOPE_ALLOWANCE_BYTES = 8_192


def message_bytes_estimate(message: Mapping[str, Any]) -> int:
    """An upper estimate of the broker item's size for a message of these kwargs: kombu's JSON
    (ASCII-escaped) body, base64-encoded as the Redis transport stores it, plus the envelope."""
    body = len(json.dumps([[], dict(message), {}], ensure_ascii=True, default=str))
    return math.ceil(body / 3) * 4 + ENVELOPE_ALLOWANCE_BYTES


def check_message_size(message: Mapping[str, Any], limit_bytes: int) -> None:
    """Refuse, before anything is sent, a message a worker would refuse undecoded as too large
    (``MODQ_MAX_MESSAGE_BYTES``): the same bound on both sides, so no valid job is dead-lettered."""
    size = message_bytes_estimate(message)
    if size > limit_bytes:
        raise InvalidContent(
            f"the message would be about {size} bytes on the broker, over "
            f"MODQ_MAX_MESSAGE_BYTES ({limit_bytes}): send fewer or shorter items per message",
            field="items" if "items" in message else "content",
            limit=limit_bytes,
        )


def _queue_name(queue: object) -> str:
    return str(getattr(queue, "name", queue))


def redacted_arguments(arguments: Mapping[str, Any]) -> str:
    """What events and Flower show of a job's arguments: ids and kinds, never text or users."""
    shown = {}
    for name, value in arguments.items():
        if name in ("content_id", "content_type", "priority", "enqueued_at_s", "source"):
            shown[name] = value
        elif name == "items" and isinstance(value, Sequence):
            shown[name] = [
                item.get("content_id") if isinstance(item, Mapping) else "?" for item in value
            ]
        elif name == "content" and isinstance(value, str):
            shown[name] = f"<{len(value)} chars>"
        elif value is not None:
            shown[name] = "<redacted>"
    return repr(shown)


def route_callbacks(options: dict[str, Any]) -> None:
    """Give each callback of a chain, link or chord that is not a modq task the queue its own
    app routes it to (the app's default queue when it has no routes): the modq worker that
    sends it knows nothing of the app's queues."""
    for key in ("link", "link_error"):
        callbacks = options.get(key)
        if callbacks is not None:
            for callback in callbacks if isinstance(callbacks, list | tuple) else [callbacks]:
                _route_one(callback)
    for step in options.get("chain") or ():
        _route_one(step)
    if options.get("chord") is not None:
        _route_one(options["chord"])


def _is_modq_app(app: object) -> bool:
    return getattr(app, "main", None) == "modq"


def _route_one(candidate: object) -> None:
    signature = maybe_signature(candidate)
    if not isinstance(signature, Signature):
        return
    for nested in signature.options.get("link") or ():
        _route_one(nested)
    name = signature.get("task")
    if not isinstance(name, str) or name.startswith("modq.") or signature.options.get("queue"):
        return
    if name.startswith("celery.") and name != "celery.starmap":  # group/chord/chain internals
        for inner in signature.get("kwargs", {}).get("tasks") or ():
            _route_one(inner)
        return
    # Celery rebuilds the steps of a chord's header on the chord's app (modq's): a step that
    # is not a modq task is routed by the app's own Celery, the current app
    app = signature._app
    if app is None or _is_modq_app(app):
        app = current_app
    route = app.amqp.router.route(dict(signature.options), name, signature.args, signature.kwargs)
    queue = route.get("queue")
    if queue is not None:
        signature.options["queue"] = _queue_name(queue)


class ProducerTask(Task):
    """Base of every modq task: producers validate, route and admit here, workers run the body.

    Subclasses say how a call becomes a message (``prepare``) and how many jobs it costs
    against its queue's bound (``cost``).
    """

    abstract = True
    error: type[InvalidContent] = InvalidContent

    def prepare(self, arguments: dict[str, Any]) -> tuple[dict[str, Any], Priority]:
        """The message's kwargs and its queue, from the call's arguments (checked)."""
        raise NotImplementedError

    def cost(self, message: Mapping[str, Any]) -> int:
        """Jobs one message carries, charged against its queue's bound."""
        return 1

    def apply_async(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> AsyncResult:
        arguments = bind_arguments(self, args, kwargs, self.error)
        message_priority, job_priority = job_priority_option(options.pop("priority", None))
        if job_priority is not None:
            given = arguments.get("priority")
            if given is not None and parse_priority(given) is not job_priority:
                raise InvalidContent(
                    f"priority option {job_priority.value!r} contradicts the priority argument "
                    f"{given!r}",
                    field="priority",
                )
            if "priority" in inspect.signature(self.run).parameters:
                arguments["priority"] = job_priority.value
        if message_priority is not None:
            options["priority"] = message_priority
        message, priority = self.prepare(arguments)
        if job_priority is not None and job_priority is not priority:
            raise InvalidContent(
                f"{self.name} always goes to {priority.value!r}, not {job_priority.value!r}",
                field="priority",
            )
        queue = _queue_name(options.setdefault("queue", priority.value))
        if queue != priority.value:
            raise InvalidContent(
                f"queue {queue!r} does not match the job's priority {priority.value!r}: a modq "
                "job goes on the queue named by its priority",
                field="queue",
            )
        check_schedule(options, get_settings())  # countdown/eta within the visibility timeout
        check_message_size(message, get_settings().max_message_bytes)
        check_broker_url(self.app.conf.broker_url)  # typed, password masked
        admission = get_admission(self.app)
        charged = 0
        if admission is not None and not options.get("retries"):  # a retry was admitted once
            charged = admission.admit(queue, self.cost(message))
        enqueued_at_s = time.time()
        if "enqueued_at_s" in inspect.signature(self.run).parameters:
            message["enqueued_at_s"] = enqueued_at_s
        # the same stamp as a header: `modq metrics serve` reads a queue's oldest message
        # without decoding its body
        # and what was charged against the queue's bound, which the receiving worker releases
        # (a retry copies its request's headers: it charges, and releases, nothing)
        options["headers"] = {
            **(options.get("headers") or {}),
            ENQUEUED_AT_HEADER: enqueued_at_s,
            CHARGED_QUEUE_HEADER: queue,
            CHARGED_ITEMS_HEADER: charged,
        }
        if not get_settings().events_show_content:
            options.setdefault("argsrepr", "()")
            options.setdefault("kwargsrepr", redacted_arguments(message))
        route_callbacks(options)
        try:
            with broker_errors():
                return super().apply_async((), message, **options)
        except BaseException:
            if admission is not None and charged:
                admission.release(queue, charged)  # nothing was sent: give the places back
            raise

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the body (on a worker); a message of the wrong shape (a stock producer's unknown
        or missing field) fails with the producer's typed error, not a bare ``TypeError``."""
        bind_arguments(self, args, kwargs, self.error)
        enqueued_at_s = kwargs.get("enqueued_at_s")
        if enqueued_at_s is not None and (
            isinstance(enqueued_at_s, bool) or not isinstance(enqueued_at_s, int | float)
        ):
            raise self.error("enqueued_at_s must be a number (seconds since the epoch)")
        running = self.request_stack.top
        if running is not None and getattr(running, "task", None) == self.name:
            # the worker's tracer already pushed this job's request (id, delivery info)
            return self.run(*args, **kwargs)
        return super().__call__(*args, **kwargs)  # called directly: a request of its own

    def signature(self, args: Any = None, *starargs: Any, **starkwargs: Any) -> Signature:
        """A signature, checked now when its arguments are complete: a ``group`` of them
        raises on a bad job before any is sent (a partial one is checked when sent)."""
        made = super().signature(args, *starargs, **starkwargs)
        self.check_signature(made.args, made.kwargs)
        return made

    def check_signature(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        """Raise on a bad job; a call still missing arguments (a partial) passes."""
        arguments = bind_arguments(self, args, kwargs, self.error, partial=True)
        try:
            bind_arguments(self, args, kwargs, self.error)
        except InvalidContent:
            return  # partial: a chain fills it in later
        arguments.pop("enqueued_at_s", None)
        self.prepare(arguments)

    def chunks(self, it: Iterable[Any], n: int) -> Any:
        """Celery's ``chunks``, with every call checked first and one priority for all (each
        chunk is one message on that priority's queue)."""
        calls = [tuple(call) for call in it]
        priorities = set()
        for call in calls:
            arguments = bind_arguments(self, call, {}, self.error)
            priorities.add(self.prepare(arguments)[1])
        if len(priorities) > 1:
            raise InvalidContent(
                "the calls of one chunks() share a priority: split them by priority",
                field="priority",
            )
        return super().chunks(calls, n)

    def map(self, it: Iterable[Any]) -> Any:
        """Refused: Celery's ``map`` passes one argument per call, and a modq job needs at least
        two; ``chunks`` or ``starmap`` take whole calls."""
        raise InvalidContent(
            f"{self.name}.map() passes one argument per call: use chunks() or starmap()",
            field="items",
        )

    def starmap(self, it: Iterable[Any]) -> Any:
        """Celery's ``starmap``, checked the same way as ``chunks`` (one message)."""
        calls = [tuple(call) for call in it]
        self.chunks(calls, max(len(calls), 1))
        return super().starmap(calls)
