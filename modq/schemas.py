"""Requests and results as plain typed data, with the validation every entry point shares."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from modq.errors import InvalidContent, UnsupportedContentType

Scores = Mapping[str, float]
_E = TypeVar("_E", bound="StrEnum")
MAX_ID_CHARS = 512  # content_id and user_id columns (db/models.py)
DEFAULT_MAX_CONTEXT_BYTES = 65_536  # MODQ_MAX_CONTEXT_BYTES
MAX_CONTEXT_NESTING = 32  # objects and lists inside ``context``


class Priority(StrEnum):
    """Queue a job goes to; workers drain them strictly in this order."""

    URGENT = "urgent"
    NORMAL = "normal"
    BULK = "bulk"


class ContentType(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    VIDEO = "video"


SUPPORTED_CONTENT_TYPES = frozenset({ContentType.TEXT})


class Decision(StrEnum):
    ALLOW = "allow"
    FLAG = "flag"
    REMOVE = "remove"


@dataclass(frozen=True, slots=True)
class ModerationRequest:
    """One validated piece of content."""

    content_id: str
    content: str
    content_type: ContentType = ContentType.TEXT
    user_id: str | None = None
    context: Mapping[str, Any] | None = None
    priority: Priority = Priority.NORMAL

    def to_message(self) -> dict[str, Any]:
        """JSON-safe kwargs for a Celery message."""
        return {
            "content_id": self.content_id,
            "content": self.content,
            "content_type": self.content_type.value,
            "user_id": self.user_id,
            "context": dict(self.context) if self.context is not None else None,
            "priority": self.priority.value,
        }


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a category tripped: its score against the threshold it crossed, and ``span``, the
    character offsets [start, end) of the part of the text that gave the score (the window
    scored; None where no span applies)."""

    category: str
    score: float
    threshold: float
    action: Decision
    span: tuple[int, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "score": self.score,
            "threshold": self.threshold,
            "action": self.action.value,
            "span": None if self.span is None else [self.span[0], self.span[1]],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Reason:
        span = data.get("span")
        return cls(
            category=data["category"],
            score=data["score"],
            threshold=data["threshold"],
            action=Decision(data["action"]),
            span=None if span is None else (int(span[0]), int(span[1])),
        )


@dataclass(slots=True)
class ModerationResult:
    """What a caller gets back; every field is JSON-safe after ``to_dict``."""

    content_id: str
    decision: Decision
    scores: dict[str, float]
    tripped: list[Reason]
    unscored_categories: list[str]
    model_name: str
    model_version: str
    policy_version: str
    variant: str | None
    cache_hit: bool
    latency_ms: float
    content_sha256: str
    created_at: str
    priority: Priority = Priority.NORMAL
    user_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    language: str | None = None  # ISO 639-1 code detected in the text; None if not detected

    def to_dict(self) -> dict[str, Any]:
        # by hand: dataclasses.asdict deep-copies every field recursively, ~10x slower, and
        # this runs once per job on the worker's hot path
        return {
            "content_id": self.content_id,
            "decision": self.decision.value,
            "scores": dict(self.scores),
            "tripped": [r.to_dict() for r in self.tripped],
            "unscored_categories": list(self.unscored_categories),
            "model_name": self.model_name,
            "model_version": self.model_version,
            "policy_version": self.policy_version,
            "variant": self.variant,
            "cache_hit": self.cache_hit,
            "latency_ms": self.latency_ms,
            "content_sha256": self.content_sha256,
            "created_at": self.created_at,
            "priority": self.priority.value,
            "user_id": self.user_id,
            "extra": copy.deepcopy(self.extra) if self.extra else {},
            "language": self.language,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModerationResult:
        # keys a newer worker added are dropped, so an older client still reads its results
        values = {k: v for k, v in data.items() if k in _RESULT_FIELDS}
        values["decision"] = Decision(values["decision"])
        values["priority"] = Priority(values.get("priority", Priority.NORMAL))
        values["tripped"] = [Reason.from_dict(r) for r in values["tripped"]]
        return cls(**values)


_RESULT_FIELDS = frozenset(ModerationResult.__dataclass_fields__)


def require_text(
    name: str,
    value: object,
    max_chars: int,
    *,
    error: type[InvalidContent] = InvalidContent,
    blank: str = "is empty",
) -> str:
    """Non-blank UTF-8 text of at most ``max_chars`` (bytes are decoded); ``error`` names the
    first problem, with ``blank`` saying what an empty value is."""
    if isinstance(value, bytes | bytearray):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise error(f"{name} is not valid UTF-8", field=name) from exc
    if not isinstance(value, str):
        raise error(f"{name} must be a string, got {type(value).__name__}", field=name)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates smuggled through JSON
        raise error(f"{name} is not valid UTF-8", field=name) from exc
    if not value.strip():
        raise error(f"{name} {blank}", field=name)
    if len(value) > max_chars:
        raise error(
            f"{name} has {len(value)} characters, the limit is {max_chars}",
            field=name,
            limit=max_chars,
        )
    return value


def _parse_enum(enum: type[_E], name: str, value: object) -> _E:
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return enum(value)
    except ValueError as exc:
        allowed = ", ".join(m.value for m in enum)
        raise InvalidContent(
            f"unknown {name} {value!r}; expected one of {allowed}", field=name
        ) from exc


def parse_priority(value: object) -> Priority:
    """``urgent`` | ``normal`` | ``bulk``; anything else is ``InvalidContent``."""
    return _parse_enum(Priority, "priority", value)


def validate_request(
    *,
    content_id: object,
    content: object,
    content_type: object = ContentType.TEXT,
    user_id: object = None,
    context: object = None,
    priority: object = Priority.NORMAL,
    max_content_chars: int,
    max_context_bytes: int = DEFAULT_MAX_CONTEXT_BYTES,
) -> ModerationRequest:
    """Check one job; raise ``InvalidContent`` (or a subclass) on the first problem found."""
    cid = require_storable_id("content_id", content_id)
    kind = _parse_enum(ContentType, "content_type", content_type)
    if kind not in SUPPORTED_CONTENT_TYPES:
        raise UnsupportedContentType(
            f"content_type {kind.value!r} is not supported yet (only 'text')",
            field="content_type",
        )
    text = require_text("content", content, max_content_chars)
    uid = None if user_id is None else require_storable_id("user_id", user_id)
    ctx = check_context(context, max_context_bytes)
    prio = parse_priority(priority)
    return ModerationRequest(cid, text, kind, uid, ctx, prio)


def require_storable_id(
    name: str, value: object, *, error: type[InvalidContent] = InvalidContent
) -> str:
    """An id SQL can store: text (``require_text``) of at most ``MAX_ID_CHARS``, no NUL
    (PostgreSQL refuses it in text)."""
    text = require_text(name, value, MAX_ID_CHARS, error=error)
    if "\x00" in text:
        raise error(f"{name} holds a NUL character", field=name)
    return text


def check_context(
    context: object, max_bytes: int = DEFAULT_MAX_CONTEXT_BYTES
) -> dict[str, Any] | None:
    """``context`` as the worker will decode it: a JSON object (text keys; text, numbers,
    booleans, null, lists and objects inside, at most ``MAX_CONTEXT_NESTING`` deep) of at most
    ``max_bytes`` of UTF-8 JSON; ``InvalidContent`` otherwise (a set, a tuple key, NaN, an
    object, a lone surrogate)."""
    if context is None:
        return None
    if not isinstance(context, Mapping):
        raise InvalidContent("context must be an object (mapping) or null", field="context")
    _check_json(context, "context", 0)
    try:
        encoded = json.dumps(
            context, ensure_ascii=False, allow_nan=False, separators=(",", ":")
        ).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:  # a value that lies about its type
        raise InvalidContent(f"context is not JSON: {type(exc).__name__}", field="context") from exc
    if len(encoded) > max_bytes:
        raise InvalidContent(
            f"context is {len(encoded)} bytes of JSON, the limit is {max_bytes}",
            field="context",
            limit=max_bytes,
        )
    decoded: dict[str, Any] = json.loads(encoded)
    return decoded


def _check_json(value: object, path: str, depth: int) -> None:
    if depth > MAX_CONTEXT_NESTING:
        raise InvalidContent(
            f"context nests deeper than {MAX_CONTEXT_NESTING} levels", field="context"
        )
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidContent(f"{path} is {value!r}: not a JSON number", field="context")
        return
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidContent(f"{path} is not valid UTF-8", field="context") from exc
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidContent(
                    f"{path} has a key of type {type(key).__name__}: keys are text",
                    field="context",
                )
            _check_json(key, f"{path} key", depth + 1)
            _check_json(item, f"{path}[{key[:40]!r}]" if depth < 3 else path, depth + 1)
        return
    if isinstance(value, list | tuple):
        for item in value:
            _check_json(item, f"{path}[]" if depth < 3 else path, depth + 1)
        return
    raise InvalidContent(
        f"{path} holds a {type(value).__name__}: only text, numbers, booleans, null, lists "
        "and objects travel as JSON",
        field="context",
    )
