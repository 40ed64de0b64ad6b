"""The native API: ``POST /v1/moderate`` (sync), ``/v1/moderate/batch``, ``/v1/reviews``.

Each route checks its content first (``api.checks``: 422 even while no worker is ready), and a
sync route honours ``Idempotency-Key`` (``api.idempotency``): a retry gets the first attempt's
answer instead of enqueuing again."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.budget import Budget
from api.checks import check_items, check_job, check_review
from api.deps import Caller, Producer
from api.idempotency import claim_of
from api.models import (
    BatchBody,
    BatchOut,
    ModerateBody,
    ModerateOut,
    ReviewBody,
    ReviewOut,
    result_out,
    sync_deadline_s,
)
from api.problems import problem_responses

router = APIRouter(prefix="/v1", tags=["native"])
ERRORS = problem_responses(400, 401, 403, 408, 413, 415, 422, 429, 503)


@router.post("/moderate", response_model=ModerateOut, responses=ERRORS)
async def moderate(
    body: ModerateBody, principal: Caller, producer: Producer, request: Request
) -> ModerateOut:
    """Moderate one piece of content and wait for the result (up to ``timeout_s``; past it 503
    with the job id: the job goes on, ``GET /v1/jobs/{job_id}`` has it later)."""
    job = body.model_dump(mode="json", exclude={"timeout_s"})
    check_job(job)

    async def work(budget: Budget) -> ModerateOut:
        job_id, result = await producer.moderate(principal, job, budget)
        return ModerateOut(job_id=job_id, result=result_out(result))

    deadline_s = sync_deadline_s(producer.settings, 1, body.timeout_s)
    claim = claim_of(request, principal, body)
    answer: ModerateOut = await request.app.state.replays.run(
        claim, work, ModerateOut, deadline_s=deadline_s
    )
    return answer


@router.post("/moderate/batch", response_model=BatchOut, responses=ERRORS)
async def moderate_batch(
    body: BatchBody, principal: Caller, producer: Producer, request: Request
) -> BatchOut:
    """Moderate up to ``MODQ_MAX_ITEMS_PER_MESSAGE`` items in one message (413 past it), on one
    queue (``priority``, default bulk); results in the items' order. Without ``timeout_s`` it
    waits ``MODQ_API_RESULT_TIMEOUT_S`` + ``MODQ_API_RESULT_TIMEOUT_PER_ITEM_S`` per item."""
    items = [item.model_dump(mode="json") for item in body.items]
    priority = body.priority.value
    check_items(producer.settings, items, priority)

    async def work(budget: Budget) -> BatchOut:
        job_id, results = await producer.moderate_many(principal, items, priority, budget)
        return BatchOut(job_id=job_id, results=[result_out(r) for r in results])

    deadline_s = sync_deadline_s(producer.settings, len(items), body.timeout_s)
    claim = claim_of(request, principal, body)
    answer: BatchOut = await request.app.state.replays.run(
        claim, work, BatchOut, deadline_s=deadline_s
    )
    return answer


@router.post(
    "/reviews",
    response_model=ReviewOut,
    status_code=201,
    responses=problem_responses(400, 401, 403, 404, 408, 413, 415, 422, 429, 503),
)
async def record_review(body: ReviewBody, principal: Caller, producer: Producer) -> ReviewOut:
    """Store a human review of content modq decided (ground truth for A/B analysis); needs a
    key with the review scope. 404 when modq never decided ``content_id``. Reviews are stored
    idempotently: the same review sent twice is counted once (``unchanged``)."""
    review = body.model_dump(mode="json", exclude_none=False)
    check_review(review)
    _, counts = await producer.review(principal, review)
    return ReviewOut.model_validate(counts)
