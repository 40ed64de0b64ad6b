"""What a worker shows of a job outside its result store: content ids, kinds and decisions,
never the text or the user.

A worker shows jobs in three places besides its results: task events (Flower, ``celery
events``), remote-control replies (``inspect active/reserved/scheduled``, Flower's worker page)
and its log. modq's own producer already sends a redacted ``argsrepr``/``kwargsrepr``; a stock
producer (``send_task``, ``celery call``, another language) sends Celery's repr of every
argument, the text and the user id included. So the worker builds both reprs again from the
message itself, for every task it runs (``RedactedRequest``, set on each task by the
``task_annotations`` in ``celeryconfig.py``), and shows a result as its content ids and
decisions only. ``MODQ_EVENTS_SHOW_CONTENT=1`` turns all of it off (debugging on a test
cluster).

The checks at the end (``is_redacted_*``) tell a redacted repr from anything else: Flower's
``format_task`` (``cli/flower_config.py``) uses them to hide what was not redacted at the source.
"""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from celery.utils.saferepr import saferepr
from celery.worker.request import Request

from modq.errors import InvalidContent
from modq.producer.task import bind_arguments, redacted_arguments
from modq.settings import get_settings

HIDDEN = "'<redacted>'"  # the repr shown in place of anything that cannot be shown safely
SHOWN_ARGUMENTS = frozenset({"content_id", "content_type", "priority", "enqueued_at_s", "source"})
SHOWN_RESULT_FIELDS = frozenset({"content_id", "decision"})

# ``ModerationResult.to_dict`` writes content_id first and decision second, so each result in a
# result's repr (one dict, or a list of them) holds this pair; a repr cut at
# ``resultrepr_maxsize`` still holds the pairs before the cut.
_RESULT_PAIR = re.compile(
    r"""'content_id': ('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"), 'decision': '(\w+)'"""
)
_CONTENT_LENGTH = re.compile(r"<\d+ chars>")


def show_content() -> bool:
    """Whether an operator turned redaction off (``MODQ_EVENTS_SHOW_CONTENT=1``)."""
    return get_settings().events_show_content


def arguments_repr(task: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple[str, str]:
    """``(argsrepr, kwargsrepr)`` of one call of ``task``: every argument by name, content ids
    and kinds shown, the text as its length, anything else ``<redacted>``."""
    try:
        arguments = bind_arguments(task, args, kwargs, InvalidContent, partial=True)
    except (InvalidContent, TypeError, ValueError):
        # does not fit the task's signature: the worker fails it; show names only
        return repr(["<redacted>"] * len(args)), redacted_arguments(dict(kwargs))
    return "()", redacted_arguments(arguments)


def result_repr(shown: object) -> str:
    """A task's result as events and logs show it: ``{'content_id': …, 'decision': …}`` per
    result (a list for many), nothing else of it."""
    text = shown if isinstance(shown, str) else saferepr(shown)
    pairs = [
        f"{{'content_id': {content_id}, 'decision': '{decision}'}}"
        for content_id, decision in _RESULT_PAIR.findall(text)
    ]
    if not pairs:
        return "None" if text == "None" else HIDDEN
    if text.startswith("{") and len(pairs) == 1:
        return pairs[0]
    cut = ", ..." if ", ..." in text else ""
    return f"[{', '.join(pairs)}{cut}]"


class RedactedRequest(Request):
    """Celery's worker-side request, showing redacted arguments and results in events,
    remote-control replies and log lines (the message's own reprs are replaced)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._redacting = not show_content()
        if self._redacting:
            argsrepr, kwargsrepr = arguments_repr(self._task, self._args or (), self._kwargs or {})
            # the request dict travels to the pool: the trace's log lines read these keys
            self._argsrepr = self._request_dict["argsrepr"] = argsrepr
            self._kwargsrepr = self._request_dict["kwargsrepr"] = kwargsrepr

    def info(self, safe: bool = False) -> dict[str, Any]:
        """What ``inspect active/reserved/scheduled`` return: the reprs, never the arguments."""
        info: dict[str, Any] = super().info(safe=safe or self._redacting)
        return info

    def send_event(self, type: str, **fields: Any) -> None:
        if self._redacting and type == "task-succeeded" and "result" in fields:
            fields["result"] = result_repr(fields["result"])
        super().send_event(type, **fields)

    def _announce_revoked(self, reason: str, terminated: bool, signum: Any, expired: bool) -> None:
        """An expired job ends as a typed failure and a dead-letter entry, not REVOKED
        (tasks/schedules.py); a real revoke stays Celery's."""
        if not expired:
            super()._announce_revoked(reason, terminated, signum, expired)
            return
        from tasks.schedules import expire_request

        expire_request(self)


class RedactedTraceLog(logging.Filter):
    """Celery's "Task … succeeded in …s: <result>" line shows the redacted result."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = record.args
        if isinstance(context, Mapping) and "return_value" in context and not show_content():
            redacted = {**context, "return_value": result_repr(context["return_value"])}
            record.args = redacted
            if isinstance(getattr(record, "data", None), Mapping):
                record.data = redacted
        return True


def install_log_filter() -> None:
    """Put ``RedactedTraceLog`` on Celery's trace logger once per process."""
    logger = logging.getLogger("celery.app.trace")
    if not any(isinstance(f, RedactedTraceLog) for f in logger.filters):
        logger.addFilter(RedactedTraceLog())


# a worker imports this module at start (celeryconfig ``imports``), before any pool forks
install_log_filter()


# --- telling a redacted repr from anything else (Flower's second line) --------------------


def _literal(text: object) -> tuple[bool, Any]:
    if not isinstance(text, str):
        return False, None
    try:
        return True, ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False, None


def _is_scalar(value: object) -> bool:
    return not isinstance(value, dict | list | tuple)


def is_redacted_args(text: object) -> bool:
    """``argsrepr`` as modq writes it: empty, or every positional argument ``<redacted>``."""
    ok, value = _literal(text)
    return ok and isinstance(value, list | tuple) and all(v == "<redacted>" for v in value)


def is_redacted_kwargs(text: object) -> bool:
    """``kwargsrepr`` as modq writes it: ids and kinds, the text's length, ``<redacted>``."""
    ok, value = _literal(text)
    if not ok or not isinstance(value, dict):
        return False
    for name, shown in value.items():
        if name in SHOWN_ARGUMENTS or shown == "<redacted>":
            continue
        if name == "content" and isinstance(shown, str) and _CONTENT_LENGTH.fullmatch(shown):
            continue
        if name == "items" and isinstance(shown, list) and all(map(_is_scalar, shown)):
            continue
        return False
    return True


def is_redacted_result(text: object) -> bool:
    """A result as ``result_repr`` writes it (or none)."""
    ok, value = _literal(text)
    if not ok:
        return False
    if value is None or value == "<redacted>":
        return True
    items = value if isinstance(value, list) else [value]
    return all(
        item is Ellipsis or (isinstance(item, dict) and set(item) <= SHOWN_RESULT_FIELDS)
        for item in items
    )
