"""The worker's side of the dead-letter queue (modq/broker/dead_letters.py): poison messages are
parked, never fatal, and jobs that ran out of retries are parked where an operator sees them.

- ``guarded_strategy`` (every task's ``Strategy``, set by ``task_annotations`` in
  ``celeryconfig.py``) checks a message's arguments against its task's signature and types
  before Celery makes a request of it, and parks what Celery cannot read (a body that is not
  JSON, not ``[args, kwargs, embed]``, a bad ETA) instead of letting Celery drop it
  (``on_decode_error`` acks it away) or crash the consumer.
- Messages Celery rejects itself (``task_rejected``: no task header; ``task_unknown``: a task
  this worker does not know) are parked too.
- A job whose retryable error (``modq.errors.RETRYABLE``) still ends in FAILURE has exhausted
  its retries, whatever the retry policy: it is parked with its attempts and its first and last
  error (``task_retry`` remembers the first). Its caller sees that FAILURE and its typed error.
- Every poison message that names a task id gets a FAILURE result (``PoisonMessage``) under
  that id, so a caller waiting on it returns.
- ``PoisonGuardStep`` (a consumer bootstep, ``tasks/poison_guard.py``, registered when this
  module is imported) keeps all this to the worker's own task channel: the transport
  dead-letters what it cannot deliver there (``Channel.guard_poison``), and a task message
  Celery cannot decode is parked rather than acknowledged away. Control messages (another
  app's broadcasts and replies on the same broker) and plain kombu consumers are left to
  kombu's and Celery's own handling, and logged for what happened to them.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from celery import Task
from celery.exceptions import MaxRetriesExceededError
from celery.signals import task_failure, task_rejected, task_retry, task_unknown
from kombu.utils.json import dumps

from modq.broker import dead_letters
from modq.broker.dead_letters import EXHAUSTED, DeadLetter, describe, park, poison_entry
from modq.errors import RETRYABLE, InvalidContent, PoisonMessage
from tasks import (
    poison_guard,  # noqa: F401  # the consumer bootstep and the log filter
    schedules,
)
from tasks.app import app

log = logging.getLogger(__name__)

Handler = Callable[..., Any]


# --- the strategy guard ---------------------------------------------------------------------


def guarded_strategy(task: Task, app: Any, consumer: Any, **kwargs: Any) -> Handler:
    """Celery's default strategy for ``task``, behind a guard: a message whose arguments do
    not fit the task, or that Celery fails to read, is dead-lettered and acknowledged."""
    from celery.worker.strategy import default

    handle = default(task, app, consumer, **kwargs)
    connection_errors = tuple(consumer.connection_errors)

    def on_message(message: Any, body: Any, ack: Any, reject: Any, callbacks: Any, **kw: Any):
        try:
            problem = shape_problem(task, message, body)
            if problem is None:  # an ETA no worker may hold (tasks/schedules.py)
                problem = schedules.eta_problem(message.headers)
                if problem is None:
                    return handle(message, body, ack, reject, callbacks, **kw)
                reason, error = "eta_too_far", problem
            else:
                reason, error = "bad_arguments", problem
        except connection_errors:
            raise
        except Exception as exc:  # any poison: park it, never crash the consumer
            reason, error = "bad_message", describe(exc)
        dead_letter_message(message, reason=reason, error=error)
        return None

    return on_message


def shape_problem(task: Task, message: Any, body: Any) -> str | None:
    """Why a protocol-2 message's arguments cannot run ``task`` (None if they can): not
    ``[args, kwargs, embed]``, not bindable to its signature, or an argument of the wrong
    JSON type. Values of the right type (an empty text) are the task's own checks."""
    if body is not None or "args" in message.payload:
        return None  # protocol 1 or a hybrid message: Celery converts it itself
    decoded = message.decode()
    if not (
        isinstance(decoded, list | tuple)
        and len(decoded) == 3
        and isinstance(decoded[0], list | tuple)
        and isinstance(decoded[1], dict)
    ):
        return "the body is not [args, kwargs, embed]"
    args, kwargs = decoded[0], decoded[1]
    return argument_problem(task, args, kwargs)


def argument_problem(task: Task, args: Sequence[Any], kwargs: Mapping[str, Any]) -> str | None:
    """Why ``args``/``kwargs`` cannot call ``task`` (None if they can)."""
    from modq.producer.task import bind_arguments

    try:
        arguments = bind_arguments(task, args, kwargs, InvalidContent)
    except InvalidContent as exc:
        return exc.message
    hints = _hints(task)
    for name, value in arguments.items():
        hint = hints.get(name)
        if hint is not None and not _fits(value, hint):
            return f"bad arguments for {task.name}: {name} is {_json_type(value)}"
    return None


_hints_by_task: dict[str, dict[str, Any]] = {}


def _hints(task: Task) -> dict[str, Any]:
    """``task``'s argument type hints (read once per task name)."""
    hints = _hints_by_task.get(task.name)
    if hints is None:
        try:
            hints = typing.get_type_hints(task.run)
        except Exception:  # an annotation that does not resolve: check the signature only
            hints = {}
        _hints_by_task[task.name] = hints
    return hints


def _fits(value: object, hint: Any) -> bool:
    """Whether a JSON value fits a type hint (unions, ``list[...]``, ``dict[...]``, scalars)."""
    if hint is Any or hint is object:
        return True
    if hint is None or hint is type(None):
        return value is None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, option) for option in typing.get_args(hint))
    if origin in (list, Sequence, tuple):
        (item, *_) = typing.get_args(hint) or (Any,)
        return isinstance(value, list | tuple) and all(_fits(v, item) for v in value)
    if origin in (dict, Mapping):
        return isinstance(value, dict)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # a hint we do not model: the task checks it


def _json_type(value: object) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else "a number"
    )


def raw_item(message: Any) -> str:
    """A consumed message as the broker item it came from: on Redis (kombu's virtual
    transports) the item itself; elsewhere (RabbitMQ) a kombu-shaped envelope of its body,
    headers and properties, so it reads back, and retries, the same way."""
    raw = getattr(message, "_raw", None)
    if isinstance(raw, dict):
        return str(dumps(raw))
    body = message.body
    properties = dict(message.properties) if isinstance(message.properties, dict) else {}
    properties["delivery_info"] = _delivery_info(message)
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError:
            body = base64.b64encode(body).decode("ascii")
            properties["body_encoding"] = "base64"
    envelope = {
        "body": body,
        "content-type": message.content_type,
        "content-encoding": message.content_encoding,
        "headers": message.headers if isinstance(message.headers, dict) else {},
        "properties": properties,
    }
    return str(dumps(envelope))


def _delivery_info(message: Any) -> dict[str, Any]:
    info = message.delivery_info if isinstance(message.delivery_info, dict) else {}
    return {key: info.get(key) for key in ("exchange", "routing_key")}


def dead_letter_message(message: Any, *, reason: str, error: str) -> None:
    """Park a consumed message (kombu ``Message``) and acknowledge it; if the store is away,
    leave it unacknowledged (it comes back after the visibility timeout)."""
    queue = _delivery_info(message)["routing_key"]
    entry = poison_entry(raw_item(message), queue=queue, reason=reason, error=error)
    try:
        park(entry)
    except Exception as exc:  # the store is away: never lose the message
        log.error("modq: cannot dead-letter a poison message yet (%s)", type(exc).__name__)
        leave_unacknowledged(message)
        return
    if not message.acknowledged:
        message.ack()


def leave_unacknowledged(message: Any) -> None:
    """Let go of a consumed message without acknowledging it: it stays in the broker's
    ``unacked`` and comes back after the visibility timeout (no prefetch slot held meanwhile)."""
    qos = getattr(getattr(message, "channel", None), "qos", None)
    getattr(qos, "_delivered", {}).pop(getattr(message, "delivery_tag", None), None)


# --- messages Celery rejects itself --------------------------------------------------------


@task_rejected.connect
def _rejected(message: Any = None, exc: BaseException | None = None, **_: Any) -> None:
    """Celery rejected a message it could not read (no task header, an invalid task)."""
    if message is not None:
        error = describe(exc) if exc is not None else "no task name in the message headers"
        _park_quietly(message, reason="bad_message", error=error, answer=True)


@task_unknown.connect
def _unknown(message: Any = None, name: str | None = None, **_: Any) -> None:
    """Celery rejected a message for a task this worker does not know (and stored a FAILURE
    ``NotRegistered`` for its id)."""
    if message is not None:
        _park_quietly(message, reason="unknown_task", error=f"no task named {name!r} here")


def _park_quietly(message: Any, *, reason: str, error: str, answer: bool = False) -> None:
    """Park a message Celery turned away; ``answer``: Celery stored nothing under its id (no
    task name), so a caller waiting on it gets ``PoisonMessage`` (``store_poison_failure``)."""
    queue = _delivery_info(message)["routing_key"]
    entry = poison_entry(raw_item(message), queue=queue, reason=reason, error=error)
    if not answer:
        entry.task_id = None  # Celery has already answered this id (NotRegistered)
    try:
        park(entry)
    except Exception as exc:
        log.error("modq: cannot dead-letter a rejected message (%s)", type(exc).__name__)


# --- jobs that exhausted their retries -----------------------------------------------------


def exhausted(exc: BaseException | None) -> bool:
    """A failure that means "gave up retrying": Celery's own, or a retryable modq error that
    still ended the job (so works with a retry count or a time budget alike)."""
    return isinstance(exc, (MaxRetriesExceededError, *RETRYABLE))


@task_retry.connect
def _retrying(request: Any = None, reason: object = None, **_: Any) -> None:
    task_id = getattr(request, "id", None)
    if not task_id:
        return
    cause = getattr(reason, "exc", None) or reason  # Celery's Retry wraps the error
    error = describe(cause) if isinstance(cause, BaseException) else str(cause)
    try:
        dead_letters.get_dead_letters().note_attempt(task_id, error)
    except Exception as exc:
        log.warning("modq: cannot note a retry for the dead-letter queue (%s)", type(exc).__name__)


@task_failure.connect
def _failed(
    sender: Task | None = None,
    task_id: str | None = None,
    exception: BaseException | None = None,
    args: Sequence[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    **_: Any,
) -> None:
    if sender is None or task_id is None or not exhausted(exception):
        return
    assert exception is not None
    try:
        request = sender.request
        delivery_info = request.delivery_info if isinstance(request.delivery_info, dict) else {}
        store = dead_letters.get_dead_letters()
        first = store.first_attempt(task_id)
        error = describe(exception)
        entry = DeadLetter(
            kind=EXHAUSTED,
            reason=getattr(exception, "code", type(exception).__name__),
            error=error,
            queue=delivery_info.get("routing_key"),
            task=sender.name,
            task_id=task_id,
            attempts=int(request.retries or 0) + 1,
            first_error=first[0] if first else error,
            first_at_s=first[1] if first else 0.0,
            message=dumps({"task": sender.name, "args": list(args or ()), "kwargs": kwargs}),
        )
        park(entry, store)
    except Exception as exc:  # the FAILURE result is stored regardless
        log.error("modq: cannot dead-letter job %s (%s)", task_id, type(exc).__name__)


# --- a caller waiting on a poison message returns -----------------------------------------


def store_poison_failure(entry: DeadLetter) -> None:
    """A FAILURE (``PoisonMessage``) under a poison message's task id, unless it has a final
    state already (a poison copy never overwrites a real result)."""
    if entry.kind == EXHAUSTED or not entry.task_id:
        return
    backend = app.backend
    if backend.get_state(entry.task_id) in ("SUCCESS", "FAILURE", "REVOKED"):
        return
    error = PoisonMessage(
        f"the message could not be run and was dead-lettered ({entry.reason}: {entry.error}); "
        f"`modq dlq show {entry.id}`",
        dead_letter_id=entry.id,
        reason=entry.reason,
    )
    backend.mark_as_failure(entry.task_id, error)


dead_letters.add_listener(store_poison_failure)


# --- the gauge on the worker's /metrics ---------------------------------------------------


class DeadLetterGauge:
    """``modq_dead_letters``: entries in the dead-letter queue, read from the store at each
    scrape (one ZCARD); absent from a scrape when the store cannot be reached."""

    NAME = "modq_dead_letters"
    HELP = "Messages parked in the dead-letter queue (poison messages, exhausted retries)."

    def describe(self) -> list[Any]:
        from prometheus_client.core import GaugeMetricFamily

        return [GaugeMetricFamily(self.NAME, self.HELP)]

    def collect(self) -> list[Any]:
        from prometheus_client.core import GaugeMetricFamily

        try:
            size = dead_letters.get_dead_letters().size()
        except Exception:
            return []
        return [GaugeMetricFamily(self.NAME, self.HELP, value=size)]


def register_gauge(registry: Any) -> None:
    """Add ``modq_dead_letters`` to ``registry`` (a Prometheus ``CollectorRegistry``), once."""
    with contextlib.suppress(ValueError):  # registered already
        registry.register(DeadLetterGauge())
