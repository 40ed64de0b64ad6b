"""Asynchronous jobs: ``POST /v1/jobs`` (202 and a job id, optional webhook) and
``GET /v1/jobs/{job_id}`` (only for the key that submitted it)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from celery import states
from fastapi import APIRouter, Path, Request, Response

import modq
from api.auth import require_priority
from api.budget import Budget
from api.deps import Caller, Producer
from api.idempotency import claim_of
from api.models import JobAccepted, JobBody, JobError, JobOut, ReviewOut, result_out
from api.problems import problem_responses, status_of
from api.producer import new_job_id
from api.webhooks import webhook_options
from modq.errors import ModerationError

router = APIRouter(prefix="/v1", tags=["jobs"])
JOB_ID = Annotated[str, Path(min_length=1, max_length=64)]


@router.post(
    "/jobs",
    response_model=JobAccepted,
    status_code=202,
    responses=problem_responses(400, 401, 403, 413, 422, 429, 503),
)
async def submit_job(
    body: JobBody, principal: Caller, producer: Producer, request: Request, response: Response
) -> JobAccepted:
    """Enqueue one piece of content on its priority queue and return at once (202). With
    ``callback_url`` the result is also POSTed there, signed (HMAC-SHA256), with retries."""
    require_priority(principal, body.priority.value)  # 403 before any check of the URL
    job = body.model_dump(mode="json", exclude={"callback_url"})

    async def work(budget: Budget) -> JobAccepted:
        budget.admitted.set()  # no slot to wait for: an async job is enqueued at once
        job_id = new_job_id()
        options: dict[str, Any] = {"task_id": job_id}
        if body.callback_url is not None:
            # signed delivery by the worker that finishes the job (api.webhooks)
            options = webhook_options(
                body.callback_url, priority=body.priority.value, job_id=job_id, app=modq.app
            )
        await producer.submit(principal, job, **options)
        status_url = str(request.url_for("get_job", job_id=job_id).path)
        return JobAccepted(
            job_id=job_id, status="queued", priority=body.priority, status_url=status_url
        )

    # a repeat with the same Idempotency-Key gets the first job's id (api.idempotency)
    accepted: JobAccepted = await request.app.state.replays.run(
        claim_of(request, principal, body),
        work,
        JobAccepted,
        deadline_s=producer.settings.api_result_timeout_s,
    )
    response.headers["Location"] = accepted.status_url
    return accepted


@router.get(
    "/jobs/{job_id}",
    response_model=JobOut,
    responses=problem_responses(400, 401, 404, 422, 429, 503),
)
async def get_job(job_id: JOB_ID, principal: Caller, producer: Producer) -> JobOut:
    """A job's state (queued, retrying, succeeded, failed) and, once done, its result. 404 for
    an id this key never submitted (or one past ``MODQ_RESULT_EXPIRES_S``)."""
    record = await producer.jobs.get(job_id, principal.key_id)
    job = JobOut(
        job_id=job_id,
        kind=record.kind,
        status="queued",
        priority=record.priority,
        created_at=datetime.fromtimestamp(record.created_at_s, UTC),
    )
    if record.unsent:  # a batch that failed before all its parts were sent: it never completes
        job.status = "failed"
        error = record.error or {}
        job.error = JobError(
            code=str(error.get("code", "batch_incomplete")),
            detail=f"{len(record.unsent)} of {len(record.parts)} parts never sent "
            f"({', '.join(record.unsent)}): {error.get('detail', 'the batch failed')}",
            status=int(error.get("status", 500)),
        )
        return job
    metas = [await producer.waiter.meta(part) for part in record.parts or (job_id,)]
    states_of = [None if meta is None else meta.get("status") for meta in metas]
    if all(state in states.READY_STATES for state in states_of):
        try:
            values = [producer.waiter.outcome(meta) for meta in metas if meta is not None]
        except ModerationError as error:
            job.status = "failed"
            job.error = JobError(code=error.code, detail=error.message, status=status_of(error))
        else:
            job.status = "succeeded"
            job.result = _result_of(record.kind, values)
    elif states.RETRY in states_of:
        job.status = "retrying"
    return job


def _result_of(kind: str, values: list[Any]) -> Any:
    """The job's result from its parts' values (one part unless a chunked batch)."""
    if kind == "batch":
        return [result_out(item) for value in values for item in value]
    (value,) = values
    if kind == "moderate_many":
        return [result_out(item) for item in value]
    if kind == "review":
        return ReviewOut.model_validate(value)
    return result_out(value)
