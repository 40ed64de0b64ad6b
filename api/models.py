"""Request and response bodies of the native API (``/v1/moderate``, ``/v1/jobs``, batch,
reviews). Types only: modq's own checks (``modq.producer``) still run on every job, so a body
that passes here can still be refused with 422 by the same rules every producer follows."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from modq.schemas import ContentType, Decision, Priority
from modq.settings import Settings, get_settings

TIMEOUT_S_MAX = 300.0


def _content_bounds(schema: dict[str, Any]) -> None:
    """OpenAPI states the bounds modq's producer rules enforce (422 ``invalid_content``, with
    its ``field``, rather than a generic type error): 1 to ``MODQ_MAX_CONTENT_CHARS``."""
    schema["minLength"] = 1
    schema["maxLength"] = get_settings().max_content_chars


ContentText = Annotated[str, Field(json_schema_extra=_content_bounds)]


def sync_deadline_s(settings: Settings, items: int, timeout_s: float | None) -> float:
    """How long a sync request waits for ``items`` results: its own ``timeout_s``, else
    ``api_result_timeout_s`` plus ``api_result_timeout_per_item_s`` per item beyond the first,
    at most ``TIMEOUT_S_MAX``: a full list gets time to be moderated."""
    if timeout_s is not None:
        return timeout_s
    extra_s = max(0, items - 1) * settings.api_result_timeout_per_item_s
    return min(TIMEOUT_S_MAX, settings.api_result_timeout_s + extra_s)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Item(_Body):
    """One piece of content."""

    content: ContentText = Field(description="The text to moderate.")
    content_id: str | None = Field(
        None, max_length=512, description="Your id for it; a fresh one is made when absent."
    )
    content_type: ContentType = ContentType.TEXT
    user_id: str | None = Field(
        None, max_length=512, description="Author: feeds the user-history rule."
    )
    context: dict[str, Any] | None = None


class ModerateBody(Item):
    priority: Priority = Priority.NORMAL
    timeout_s: float | None = Field(
        None, gt=0, le=TIMEOUT_S_MAX, description="Deadline (default MODQ_API_RESULT_TIMEOUT_S)."
    )


class JobBody(Item):
    priority: Priority = Priority.NORMAL
    callback_url: str | None = Field(
        None,
        max_length=2048,
        description="Gets the result by a signed POST (HMAC-SHA256, retried with backoff).",
    )


class BatchBody(_Body):
    items: list[Item] = Field(min_length=1, description="Up to MODQ_MAX_ITEMS_PER_MESSAGE.")
    priority: Priority = Priority.BULK
    timeout_s: float | None = Field(None, gt=0, le=TIMEOUT_S_MAX)


class ReviewBody(_Body):
    content_id: str = Field(max_length=512)
    label: bool | str | None = Field(
        None, description="The overall verdict: violation/safe, true/false, 1/0, yes/no."
    )
    labels: dict[str, bool | str | None] | None = Field(
        None, description='Per-category verdicts, same words (e.g. {"spam": "safe"}).'
    )
    reviewer: str | None = Field(None, max_length=256)
    reviewed_at: datetime | None = None


class ReasonOut(BaseModel):
    category: str
    score: float
    threshold: float
    action: Decision
    span: list[int] | None = Field(
        None,
        description="Character offsets [start, end) of the part of the text that gave the "
        "score (the window scored).",
    )


class ResultOut(BaseModel):
    """modq's full result for one piece of content."""

    content_id: str
    decision: Decision
    scores: dict[str, float]
    tripped: list[ReasonOut]
    unscored_categories: list[str]
    model_name: str
    model_version: str
    policy_version: str
    variant: str | None
    cache_hit: bool
    latency_ms: float
    content_sha256: str
    created_at: str
    priority: Priority
    language: str | None = Field(
        None,
        description="ISO 639-1 code of the language detected in the text; the policy decides "
        "what a language the model was not built for gets.",
    )


class ModerateOut(BaseModel):
    job_id: str
    result: ResultOut


class BatchOut(BaseModel):
    job_id: str
    results: list[ResultOut]


class JobAccepted(BaseModel):
    job_id: str
    status: Literal["queued"]
    priority: Priority
    status_url: str


class JobError(BaseModel):
    code: str
    detail: str
    status: int


class JobOut(BaseModel):
    job_id: str
    kind: str
    status: Literal["queued", "retrying", "succeeded", "failed"]
    priority: Priority
    created_at: datetime
    result: ResultOut | list[ResultOut] | ReviewOut | None = None
    error: JobError | None = None


class ReviewOut(BaseModel):
    content_id: str
    new: int
    unchanged: int
    changed: int


JobOut.model_rebuild()


def result_out(result: dict[str, Any]) -> ResultOut:
    """A worker's result dict as the API shows it (the author's user id is not echoed)."""
    return ResultOut.model_validate(
        {k: v for k, v in result.items() if k in ResultOut.model_fields}
    )
