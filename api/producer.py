"""The API as a producer: check the caller's scope, enqueue through modq's client (routing by
priority, admission, typed errors, all in ``modq.producer``), wait on the result with a deadline.

Sync work is admitted fairly between keys (``api.fairness``): each job holds one of its key's
slots from enqueue to result, and a sync batch goes as chunks of ``api_batch_chunk_items``
items, each holding a slot, so no request waits behind a whole batch or a whole flood.

``from modq import moderate, ...`` is the client every app imports; the API adds nothing to the
producer path, so a job sent over HTTP lands exactly as one sent with ``moderate.delay``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

from starlette.concurrency import run_in_threadpool

import modq
from api.auth import Principal, require_priority, require_review_scope
from api.budget import Budget
from api.fairness import KeySlots
from api.jobs import JobStore
from api.readiness import ReadinessProbe
from api.results import ResultWaiter
from modq.errors import DeadlineExceeded, ModerationError
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
        slots: KeySlots | None = None,
    ) -> None:
        self.settings = settings
        self.waiter = waiter
        self.jobs = jobs
        self.readiness = readiness
        self.slots = slots or KeySlots.for_settings(settings)
        self._background: set[asyncio.Task[Any]] = set()  # chunks sent by a failed batch

    def _clock(self, timeout_s: float | None) -> Callable[[], float]:
        """The seconds left of a request's deadline, whenever asked."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (timeout_s or self.settings.api_result_timeout_s)
        return lambda: max(deadline - loop.time(), 0.0)

    async def moderate(
        self,
        principal: Principal,
        job: dict[str, Any],
        budget: Budget,
    ) -> tuple[str, dict[str, Any]]:
        """One job, synchronously: (job id, result dict); it waits for a slot of its key
        within ``budget.admit_s`` (429 past it, never enqueued)."""
        require_priority(principal, job["priority"])  # 403 before the 503 of no worker
        await self.readiness.require_worker()
        admit_left, result_left = self._clock(budget.admit_s), self._clock(budget.result_s)
        async with self.slots.slot(principal.key_id, admit_left()):
            budget.admitted.set()
            job_id = await self.submit(principal, job)
            meta = await self.waiter.wait(job_id, result_left())
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
        budget: Budget,
    ) -> tuple[str, list[dict[str, Any]]]:
        """Items checked by ``api.checks.check_items`` (its 413 past ``max_items_per_message``):
        (job id, results in the items' order). Sent as one ``moderate_many`` message per chunk
        of ``api_batch_chunk_items``, each holding a slot of the key; more than one chunk makes
        a ``batch`` job whose id covers them all. The first chunk that fails fails the batch:
        the chunks not yet sent are cancelled (never sent; the batch's job record names them),
        those sent go on, holding their slots."""
        require_priority(principal, priority)
        await self.readiness.require_worker()
        items = [{**item, "content_id": item.get("content_id") or new_job_id()} for item in items]
        size = self.settings.api_batch_chunk_items
        chunks = [items[start : start + size] for start in range(0, len(items), size)] or [[]]
        clocks = (self._clock(budget.admit_s), self._clock(budget.result_s))
        if len(chunks) == 1:
            job_id = new_job_id()
            admitted = budget.admitted
            chunk = self._chunk(
                principal, job_id, chunks[0], priority, clocks, lambda _: admitted.set()
            )
            return job_id, await chunk
        batch_id = new_job_id()
        part_ids = [new_job_id() for _ in chunks]
        await self.jobs.record(batch_id, principal.key_id, "batch", priority, parts=part_ids)
        sent: set[str] = set()

        def on_sent(part_id: str) -> None:
            sent.add(part_id)
            if len(sent) == len(part_ids):  # admitted as a whole: a refusal can come no more
                budget.admitted.set()

        tasks = [
            asyncio.create_task(self._chunk(principal, part_id, chunk, priority, clocks, on_sent))
            for part_id, chunk in zip(part_ids, chunks, strict=True)
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:  # a failed chunk, or the caller gone: no chunk is sent past this point
            unsent = self._stop_unsent(tasks, part_ids, sent)
        errors = [t.exception() for t in tasks if t.done() and not t.cancelled()]  # all retrieved
        failure = next((error for error in errors if error is not None), None)
        if failure is None:
            return batch_id, [result for task in tasks for result in task.result()]
        if isinstance(failure, ModerationError):  # the batch's id: GET /v1/jobs says what ran
            failure.details["job_id"] = batch_id  # not a chunk's: the client never saw those
        if unsent and isinstance(failure, ModerationError):
            await self.jobs.record(
                batch_id,
                principal.key_id,
                "batch",
                priority,
                parts=part_ids,
                unsent=unsent,
                error=failure,
            )
        if isinstance(failure, DeadlineExceeded) and not unsent:
            raise DeadlineExceeded(
                f"no result within the deadline; the batch goes on: GET /v1/jobs/{batch_id}",
                job_id=batch_id,
            ) from failure
        raise failure

    def _stop_unsent(
        self, tasks: list[asyncio.Task[list[dict[str, Any]]]], part_ids: list[str], sent: set[str]
    ) -> list[str]:
        """Cancel the chunks not sent yet (their ids); those sent go on in the background,
        holding their slots until their result or deadline."""
        unsent = []
        for task, part_id in zip(tasks, part_ids, strict=True):
            if task.done():
                failed = task.cancelled() or task.exception() is not None
                if failed and part_id not in sent:
                    unsent.append(part_id)
                continue
            if part_id in sent:
                self._background.add(task)
                task.add_done_callback(self._forget)
            else:
                task.cancel()
                unsent.append(part_id)
        return unsent

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: nobody awaits a chunk past its batch's failure

    async def _chunk(
        self,
        principal: Principal,
        job_id: str,
        items: list[dict[str, Any]],
        priority: str,
        clocks: tuple[Callable[[], float], Callable[[], float]],
        on_sent: Callable[[str], None],
    ) -> list[dict[str, Any]]:
        """One ``moderate_many`` message, sent once a slot of the key is free (within the
        admission clock; ``on_sent(job_id)`` then); its results (within the result clock)."""
        admit_left, result_left = clocks
        async with self.slots.slot(principal.key_id, admit_left()):
            on_sent(job_id)
            await self.jobs.record(job_id, principal.key_id, "moderate_many", priority)
            await run_in_threadpool(
                partial(
                    modq.moderate_many.apply_async,
                    kwargs={"items": items, "priority": priority},
                    task_id=job_id,
                )
            )
            meta = await self.waiter.wait(job_id, result_left())
        return list(self.waiter.outcome(meta))

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
