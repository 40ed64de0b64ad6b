"""Reading raw broker items without trusting them: what a dead-letter entry says of a message
that no decoder may read (not JSON, nested 5,000 deep, cut short), as far as it can be read,
never raising. Error texts are cut short here too (``clip``, ``describe``)."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, replace
from typing import Any

ERROR_CHARS = 500  # an error text is cut here: a reason, not a dump


def clip(text: str) -> str:
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"


def describe(exc: BaseException) -> str:
    """An exception as one line of text: its type, then its message (cut)."""
    try:
        text = str(exc)
    except Exception:  # an exception whose message cannot be made
        text = "(no message)"
    return clip(f"{type(exc).__name__}: {text}")


def encode_raw(item: bytes | str) -> tuple[str, str]:
    """``(message, message_encoding)`` for a raw broker item."""
    if isinstance(item, str):
        return item, "utf-8"
    try:
        return item.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(item).decode("ascii"), "base64"


@dataclass(frozen=True)
class RawJob:
    """What can be read back from a raw kombu message, as far as it can be read."""

    task: str | None = None
    task_id: str | None = None
    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None
    reply_to: str | None = None
    problem: str | None = None  # why the arguments could not be read (None: they were)


def read_raw(item: bytes | str) -> RawJob:
    """The task name, id and arguments of a raw kombu message (Celery protocol 2), with plain
    JSON (no object hooks): as much as the message yields, ``problem`` saying what did not.
    Total: whatever ``item`` holds (nested 5,000 deep, not JSON), it returns, never raises."""
    try:
        return _read_raw(item)
    except Exception as exc:  # a reader of poison must not be poisoned by it
        return RawJob(problem=f"unreadable: {describe(exc)}")


def _read_raw(item: bytes | str) -> RawJob:
    try:
        envelope = json.loads(item)
    except Exception as exc:  # ValueError, UnicodeDecodeError, RecursionError
        # its task and id, read off the text where they can be, so its caller is answered
        found = known_fields(
            item.encode("utf-8", "surrogatepass") if isinstance(item, str) else item
        )
        return RawJob(
            task=found["task"],
            task_id=found["id"] or found["correlation_id"],
            problem=f"not JSON: {describe(exc)}",
        )
    if not isinstance(envelope, dict):
        return RawJob(problem="not a JSON object")
    headers = envelope.get("headers")
    headers = headers if isinstance(headers, dict) else {}
    properties = envelope.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    task = _text(headers.get("task"))
    task_id = _text(headers.get("id")) or _text(properties.get("correlation_id"))
    known = RawJob(task=task, task_id=task_id, reply_to=_text(properties.get("reply_to")))
    body = envelope.get("body")
    try:
        if properties.get("body_encoding") == "base64" and isinstance(body, str):
            body = base64.b64decode(body, validate=True)
        decoded = json.loads(body) if isinstance(body, str | bytes) else body
    except Exception as exc:  # binascii.Error, ValueError, RecursionError, ...
        return replace(known, problem=f"body does not decode: {describe(exc)}")
    if not (
        isinstance(decoded, list)
        and len(decoded) == 3
        and isinstance(decoded[0], list)
        and isinstance(decoded[1], dict)
    ):
        return replace(known, problem="body is not [args, kwargs, embed]")
    return replace(known, args=decoded[0], kwargs=decoded[1])


# what the text of an item no decoder reads says of it (an oversize item's tail: kombu puts
# headers and properties after the body)
_FIELDS = {
    name: re.compile(rf'"{name}":\s*"([^"\\]{{1,200}})"'.encode())
    for name in ("task", "id", "correlation_id")
}


def known_fields(text: bytes) -> dict[str, str | None]:
    """The last ``"task"``, ``"id"`` and ``"correlation_id"`` string values in ``text``."""
    found: dict[str, str | None] = {}
    for name, pattern in _FIELDS.items():
        matches = pattern.findall(text)
        found[name] = matches[-1].decode("utf-8", "replace") if matches else None
    return found


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
