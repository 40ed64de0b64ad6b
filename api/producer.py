"""The API as a producer: check the caller's scope, enqueue through modq's client (routing by
priority, admission, typed errors, all in ``modq.producer``), wait on the result with a deadline.

``from modq import moderate, ...`` is the client every app imports; the API adds nothing to the
producer path, so a job sent over HTTP lands exactly as one sent with ``moderate.delay``.
"""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any

from starlette.concurrency import run_in_threadpool

import modq
from api.auth import Principal, require_priority, require_review_scope
from api.jobs import JobStore
from api.readiness import ReadinessProbe
from api.results import ResultWaiter
from modq.errors import TooLarge
from modq.settings import Settings


def new_job_id() -> str:
    return str(uuid.uuid4())


class ApiProducer:
    """Enqueue and wait; every method raises ``modq.errors`` types (the status table maps them)."""

    def __init__(
        self,
        settings: Settings,
        waiter: ResultWaiter,
        jobs: JobStore,
        readiness: ReadinessProbe,
    ) -> None:
        self.settings = settings
        self.waiter = waiter
        self.jobs = jobs
        self.readiness = readiness

    async def moderate(
        self,
        principal: Principal,
        job: dict[str, Any],
        timeout_s: float | None,
    ) -> tuple[str, dict[str, Any]]:
        """One job, synchronously: (job id, result dict)."""
        require_priority(principal, job["priority"])  # 403 before the 503 of no worker
        await self.readiness.require_worker()
        job_id = await self.submit(principal, job)
        meta = await self.waiter.wait(job_id, timeout_s or self.settings.api_result_timeout_s)
        return job_id, self.waiter.outcome(meta)

    async def submit(self, principal: Principal, job: dict[str, Any], **options: Any) -> str:
        """One job, enqueued (its id); the caller's scope checked first."""
        require_priority(principal, job["priority"])
        job = {**job, "content_id": job.get("content_id") or new_job_id()}
        job_id = options.pop("task_id", None) or new_job_id()
        await self.jobs.record(job_id, principal.key_id, "moderate", job["priority"])
        await run_in_threadpool(
            partial(modq.moderate.apply_async, kwargs=job, task_id=job_id, **options)
        )
        return job_id

    async def moderate_many(
        self,
        principal: Principal,
        items: list[dict[str, Any]],
        priority: str,
        timeout_s: float | None,
    ) -> tuple[str, list[dict[str, Any]]]:
        """Many items in one message (up to ``max_items_per_message``): (job id, results)."""
        limit = self.settings.max_items_per_message
        if len(items) > limit:
            raise TooLarge(f"{len(items)} items, the limit is {limit}", field="items", limit=limit)
        require_priority(principal, priority)
        await self.readiness.require_worker()
        items = [{**item, "content_id": item.get("content_id") or new_job_id()} for item in items]
        job_id = new_job_id()
        await self.jobs.record(job_id, principal.key_id, "moderate_many", priority)
        await run_in_threadpool(
            partial(
                modq.moderate_many.apply_async,
                kwargs={"items": items, "priority": priority},
                task_id=job_id,
            )
        )
        meta = await self.waiter.wait(job_id, timeout_s or self.settings.api_result_timeout_s)
        return job_id, list(self.waiter.outcome(meta))

    async def review(
        self, principal: Principal, review: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        """Store a human review (ground truth for A/B analysis): (job id, counts)."""
        require_review_scope(principal)
        await self.readiness.require_worker()
        job_id = new_job_id()
        await self.jobs.record(job_id, principal.key_id, "review", "normal")
        await run_in_threadpool(
            partial(
                modq.record_review.apply_async,
                kwargs={**review, "source": "api"},
                task_id=job_id,
            )
        )
        meta = await self.waiter.wait(job_id, self.settings.api_result_timeout_s)
        return job_id, dict(self.waiter.outcome(meta))
