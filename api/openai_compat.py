"""``POST /v1/moderations``: OpenAI's moderation endpoint, answered by modq.

The request is OpenAI's (``input``: a string, a list of strings, or a list of
``{"type": "text", "text": ...}`` parts; ``model`` optional). modq answers with the model it
serves, whatever ``model`` names (accepted so existing clients send what they send), and says
which in the response's ``model``. An extension field ``priority`` picks the queue (normal).

The response passes OpenAI's own types strictly
(``openai.types.ModerationCreateResponse.model_validate``): every category has a bool and a
number. modq's categories map onto OpenAI's names in ``modq.categories.OPENAI_NAME`` (spam onto
``illicit``: docs/api.md says why). An OpenAI category with no modq score behind it reads
``false`` and ``0.0``, has no input type in ``category_applied_input_types``, and is listed in
the result's ``unscored_categories``: the 0 means "not measured", never "measured safe".
``flagged`` is modq's decision (flag or remove); since every category a decision can trip has
an OpenAI name, a flagged result always has a category that is true. The ``modq`` field of each
result carries modq's full result.

Retries: a list waits ``MODQ_API_RESULT_TIMEOUT_S`` plus ``MODQ_API_RESULT_TIMEOUT_PER_ITEM_S``
per item; a retry (``Idempotency-Key``, or the openai client's own retries) gets the first
attempt's answer instead of enqueuing the list again (``api.idempotency``).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from api.budget import Budget
from api.checks import check_items, check_job
from api.deps import Caller, Producer
from api.idempotency import claim_of
from api.models import ContentText, ResultOut, result_out, sync_deadline_s
from api.problems import problem_responses
from modq.categories import OPENAI_CATEGORIES, OPENAI_NAME
from modq.errors import InvalidContent, UnsupportedContentType
from modq.schemas import Decision, Priority

MODQ_NAME = {openai: modq_name for modq_name, openai in OPENAI_NAME.items()}

router = APIRouter(prefix="/v1", tags=["openai-compatible"])


class TextPart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["text"]
    text: ContentText


class ImageUrl(BaseModel):
    url: str


class ImagePart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["image_url"]
    image_url: ImageUrl


class ModerationsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: ContentText | list[ContentText] | list[TextPart | ImagePart] = Field(
        description="A text, a list of texts, or a list of text parts (images: 422)."
    )
    model: str | None = Field(None, description="Accepted; modq serves its current model.")
    priority: Priority = Field(Priority.NORMAL, description="modq extension: the queue.")


InputTypes = Annotated[list[Literal["text"]], Field(description="[] where modq scores nothing.")]


class OpenAIResult(BaseModel):
    flagged: bool = Field(description="modq's decision is flag or remove.")
    categories: dict[str, bool]
    category_scores: dict[str, float] = Field(
        description="0.0 for a category in unscored_categories: not measured, not safe."
    )
    category_applied_input_types: dict[str, InputTypes]
    unscored_categories: list[str] = Field(
        description="OpenAI categories with no modq score behind them (they read 0 / false)."
    )
    modq: ResultOut = Field(description="modq's full result (decision, reasons, versions).")


class ModerationsOut(BaseModel):
    id: str
    model: str
    results: list[OpenAIResult]


def texts_of(value: str | list[str] | list[TextPart | ImagePart]) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not value:
        raise InvalidContent("input is an empty list", field="input")
    texts = []
    for part in value:
        if isinstance(part, ImagePart):
            raise UnsupportedContentType(
                "image inputs are not supported yet (only text)", field="input"
            )
        texts.append(part if isinstance(part, str) else part.text)
    return texts


def openai_result(result: dict[str, Any]) -> OpenAIResult:
    """One modq result in OpenAI's shape, through ``OPENAI_NAME``."""
    scores: dict[str, float] = result["scores"]
    tripped = {reason["category"] for reason in result["tripped"]}
    categories: dict[str, bool] = {}
    category_scores: dict[str, float] = {}
    applied: dict[str, list[Literal["text"]]] = {}
    unscored = []
    for name in OPENAI_CATEGORIES:
        category = MODQ_NAME.get(name)
        if category is None or category not in scores:
            categories[name], category_scores[name], applied[name] = False, 0.0, []
            unscored.append(name)
        else:
            categories[name] = category in tripped
            category_scores[name] = float(scores[category])
            applied[name] = ["text"]
    return OpenAIResult(
        flagged=result["decision"] != Decision.ALLOW.value,
        categories=categories,
        category_scores=category_scores,
        category_applied_input_types=applied,
        unscored_categories=unscored,
        modq=result_out(result),
    )


@router.post(
    "/moderations",
    response_model=ModerationsOut,
    responses=problem_responses(400, 401, 403, 408, 413, 415, 422, 429, 503),
)
async def create_moderation(
    body: ModerationsBody, principal: Caller, producer: Producer, request: Request
) -> ModerationsOut:
    """OpenAI-compatible moderation: one result per input, in order. A list waits
    ``MODQ_API_RESULT_TIMEOUT_S`` + ``MODQ_API_RESULT_TIMEOUT_PER_ITEM_S`` per item; a retry
    with the same ``Idempotency-Key`` (or an automatic retry of OpenAI's client) gets the first
    attempt's answer rather than enqueuing the list again."""
    texts = texts_of(body.input)
    priority = body.priority.value
    if len(texts) == 1:
        check_job({"content": texts[0], "priority": priority})
    else:
        check_items(producer.settings, [{"content": text} for text in texts], priority)

    async def work(budget: Budget) -> ModerationsOut:
        response_id = f"modr-{uuid.uuid4().hex}"
        if len(texts) == 1:
            job = {"content_id": f"{response_id}-0", "content": texts[0], "priority": priority}
            _, result = await producer.moderate(principal, job, budget)
            results = [result]
        else:
            items = [
                {"content_id": f"{response_id}-{index}", "content": text}
                for index, text in enumerate(texts)
            ]
            _, results = await producer.moderate_many(principal, items, priority, budget)
        first = results[0]
        return ModerationsOut(
            id=response_id,
            model=f"{first['model_name']}:{first['model_version']}",
            results=[openai_result(result) for result in results],
        )

    replays = request.app.state.replays
    deadline_s = sync_deadline_s(producer.settings, len(texts), None)
    claim = claim_of(request, principal, body)
    answer: ModerationsOut = await replays.run(claim, work, ModerationsOut, deadline_s=deadline_s)
    return answer
