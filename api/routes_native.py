"""The native API: ``POST /v1/moderate`` (sync), ``/v1/moderate/batch``, ``/v1/reviews``."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import Caller, Producer
from api.models import (
    BatchBody,
    BatchOut,
    ModerateBody,
    ModerateOut,
    ReviewBody,
    ReviewOut,
    result_out,
)
from api.problems import problem_responses

router = APIRouter(prefix="/v1", tags=["native"])
ERRORS = problem_responses(400, 401, 403, 413, 422, 429, 503)


@router.post("/moderate", response_model=ModerateOut, responses=ERRORS)
async def moderate(body: ModerateBody, principal: Caller, producer: Producer) -> ModerateOut:
    """Moderate one piece of content and wait for the result (up to ``timeout_s``; past it 503
    with the job id: the job goes on, ``GET /v1/jobs/{job_id}`` has it later)."""
    job = body.model_dump(mode="json", exclude={"timeout_s"})
    job_id, result = await producer.moderate(principal, job, body.timeout_s)
    return ModerateOut(job_id=job_id, result=result_out(result))


@router.post("/moderate/batch", response_model=BatchOut, responses=ERRORS)
async def moderate_batch(body: BatchBody, principal: Caller, producer: Producer) -> BatchOut:
    """Moderate up to ``MODQ_MAX_ITEMS_PER_MESSAGE`` items in one message (413 past it), on one
    queue (``priority``, default bulk); results in the items' order."""
    items = [item.model_dump(mode="json") for item in body.items]
    job_id, results = await producer.moderate_many(
        principal, items, body.priority.value, body.timeout_s
    )
    return BatchOut(job_id=job_id, results=[result_out(r) for r in results])


@router.post(
    "/reviews",
    response_model=ReviewOut,
    status_code=201,
    responses=problem_responses(400, 401, 403, 404, 413, 422, 429, 503),
)
async def record_review(body: ReviewBody, principal: Caller, producer: Producer) -> ReviewOut:
    """Store a human review of content modq decided (ground truth for A/B analysis); needs a
    key with the review scope. 404 when modq never decided ``content_id``."""
    review = body.model_dump(mode="json", exclude_none=False)
    _, counts = await producer.review(principal, review)
    return ReviewOut.model_validate(counts)
