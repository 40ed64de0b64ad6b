"""``POST /v1/moderations``: OpenAI's moderation endpoint, answered by modq.

The request is OpenAI's (``input``: a string, a list of strings, or a list of
``{"type": "text", "text": ...}`` parts; ``model`` optional). modq answers with the model it
serves, whatever ``model`` names (accepted so existing clients send what they send), and says
which in the response's ``model``. An extension field ``priority`` picks the queue (normal).

Categories: modq's canonical categories map onto OpenAI's names in ``OPENAI_NAME`` (the one
table, documented in docs/api.md). An OpenAI category modq does not score is ``null`` in
``categories`` and ``category_scores``, has no input type in ``category_applied_input_types``,
and is listed in ``unscored_categories``: never a silent ``false`` or ``0``. OpenAI's Python
client parses such a response (its typed attributes are ``None`` there); a strict validator of
OpenAI's schema would reject the nulls, which is the honest outcome. ``flagged`` is modq's
decision (flag or remove), which may come from a category OpenAI has no name for (spam): the
``modq`` field of each result carries modq's full result.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Caller, Producer
from api.models import ResultOut, result_out
from api.problems import problem_responses
from modq.categories import ADULT, HARASSMENT, HATE_SPEECH, SELF_HARM, VIOLENCE
from modq.errors import InvalidContent, UnsupportedContentType
from modq.schemas import Decision, Priority

OPENAI_CATEGORIES: tuple[str, ...] = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
# modq category -> OpenAI category. spam has no OpenAI name (it shows in `modq` only).
OPENAI_NAME: dict[str, str] = {
    HARASSMENT: "harassment",
    HATE_SPEECH: "hate",
    SELF_HARM: "self-harm",
    ADULT: "sexual",
    VIOLENCE: "violence",
}
MODQ_NAME = {openai: modq_name for modq_name, openai in OPENAI_NAME.items()}

router = APIRouter(prefix="/v1", tags=["openai-compatible"])


class TextPart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["text"]
    text: str


class ImageUrl(BaseModel):
    url: str


class ImagePart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["image_url"]
    image_url: ImageUrl


class ModerationsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: str | list[str] | list[TextPart | ImagePart] = Field(
        description="A text, a list of texts, or a list of text parts (images: 422)."
    )
    model: str | None = Field(None, description="Accepted; modq serves its current model.")
    priority: Priority = Field(Priority.NORMAL, description="modq extension: the queue.")


class OpenAIResult(BaseModel):
    flagged: bool
    categories: dict[str, bool | None]
    category_scores: dict[str, float | None]
    category_applied_input_types: dict[str, list[Literal["text"]]]
    unscored_categories: list[str] = Field(
        description="OpenAI categories modq did not score: null above, never a silent 0."
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
    categories: dict[str, bool | None] = {}
    category_scores: dict[str, float | None] = {}
    applied: dict[str, list[Literal["text"]]] = {}
    unscored = []
    for name in OPENAI_CATEGORIES:
        category = MODQ_NAME.get(name)
        if category is None or category not in scores:
            categories[name] = category_scores[name] = None
            applied[name] = []
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
    responses=problem_responses(400, 401, 403, 413, 422, 429, 503),
)
async def create_moderation(
    body: ModerationsBody, principal: Caller, producer: Producer
) -> ModerationsOut:
    """OpenAI-compatible moderation: one result per input, in order."""
    texts = texts_of(body.input)
    priority = body.priority.value
    response_id = f"modr-{uuid.uuid4().hex}"
    if len(texts) == 1:
        job = {"content_id": f"{response_id}-0", "content": texts[0], "priority": priority}
        _, result = await producer.moderate(principal, job, None)
        results = [result]
    else:
        items = [
            {"content_id": f"{response_id}-{index}", "content": text}
            for index, text in enumerate(texts)
        ]
        _, results = await producer.moderate_many(principal, items, priority, None)
    first = results[0]
    return ModerationsOut(
        id=response_id,
        model=f"{first['model_name']}:{first['model_version']}",
        results=[openai_result(result) for result in results],
    )
