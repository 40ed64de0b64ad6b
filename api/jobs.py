"""Which API key submitted which job: one small Redis record per job, so ``GET /v1/jobs/{id}``
answers only the key that sent it (404 to any other, as for an id that never existed) and tells
a queued job from an unknown one (Celery alone calls both PENDING)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from api.problems import status_of
from modq.errors import BrokerUnavailable, ModerationError, UnknownJob

KEY_PREFIX = "modq:api:job:"


@dataclass(frozen=True, slots=True)
class JobRecord:
    job_id: str
    key_id: str
    kind: str  # moderate | moderate_many | review | batch (a sync batch sent as chunks)
    priority: str
    created_at_s: float
    parts: tuple[str, ...] = ()  # a batch's chunks: their job ids, in the items' order
    unsent: tuple[str, ...] = ()  # a failed batch's chunks never sent (cancelled or refused)
    error: dict[str, Any] | None = None  # why a batch failed: {code, detail, status}


class JobStore:
    """Job records in Redis, kept as long as Celery keeps results (``result_expires_s``)."""

    def __init__(self, redis_url: str, *, ttl_s: int) -> None:
        self._redis: Redis = Redis.from_url(redis_url)
        self._ttl_s = ttl_s

    async def record(
        self,
        job_id: str,
        key_id: str,
        kind: str,
        priority: str,
        *,
        parts: list[str] | None = None,
        unsent: list[str] | None = None,
        error: ModerationError | None = None,
    ) -> JobRecord:
        """Record a job (again, to say which parts of a failed batch were never sent)."""
        failure = None
        if error is not None:
            failure = {"code": error.code, "detail": error.message, "status": status_of(error)}
        record = JobRecord(
            job_id,
            key_id,
            kind,
            priority,
            time.time(),
            tuple(parts or ()),
            tuple(unsent or ()),
            failure,
        )
        data: dict[str, Any] = {
            "key_id": key_id,
            "kind": kind,
            "priority": priority,
            "at": record.created_at_s,
        }
        if parts:
            data["parts"] = list(parts)
        if unsent:
            data["unsent"] = list(unsent)
        if failure is not None:
            data["error"] = failure
        body = json.dumps(data)
        try:
            await self._redis.set(KEY_PREFIX + job_id, body, ex=self._ttl_s)
        except RedisError as exc:
            raise BrokerUnavailable(f"cannot record the job: {type(exc).__name__}") from exc
        return record

    async def get(self, job_id: str, key_id: str) -> JobRecord:
        """The record of ``job_id`` if ``key_id`` submitted it; UnknownJob otherwise."""
        try:
            raw = await self._redis.get(KEY_PREFIX + job_id)
        except RedisError as exc:
            raise BrokerUnavailable(f"cannot read the job: {type(exc).__name__}") from exc
        data: dict[str, Any] = json.loads(raw) if raw is not None else {}
        if data.get("key_id") != key_id:
            raise UnknownJob(f"no job {job_id!r} for this API key", job_id=job_id)
        return JobRecord(
            job_id,
            key_id,
            data["kind"],
            data["priority"],
            float(data["at"]),
            tuple(data.get("parts", ())),
            tuple(data.get("unsent", ())),
            data.get("error"),
        )

    async def aclose(self) -> None:
        await self._redis.aclose()
