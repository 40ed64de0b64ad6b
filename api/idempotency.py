"""Repeated POSTs run once: a retry gets the answer of the work its first attempt started.

A request is recognised as a repeat, always within one API key, in one of two ways:

- ``Idempotency-Key: <token>`` (draft-ietf-httpapi-idempotency-key-header): the first request
  with a token claims it; a later one with the same token and the same body gets that
  request's answer (waiting for it if it is still running); the same token with another body
  is 422.
- OpenAI's Python client retries on its own (503, 429, timeouts) but sends no idempotency
  header: its only retry header is ``X-Stainless-Retry-Count`` (0 on the first attempt, 1, 2
  ... on retries; openai 3.63, ``_base_client.py``), and the body stays the same. So a request
  carrying that header records its body's fingerprint, and a request with a count of 1 or
  more gets the answer of the latest request with the same fingerprint. A first attempt
  (count 0) never attaches: two deliberate, identical calls both run.

A claimed request runs in a task of its own. It waits for a slot of its key (``api.fairness``)
within the caller's deadline, as any request: past it 429, never enqueued. Once enqueued, only
its wait for the result outlives the caller: when the caller's deadline passes, the caller
gets 503 (with ``Retry-After``) while the work goes on and stores its answer for
``answer_ttl_s``; the retry picks it up instead of enqueuing the same items again. Plain
requests (neither header) run as before. The records live in Redis (``modq:api:once:``), so
every API process sees them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel
from redis.asyncio import Redis
from redis.exceptions import RedisError

from api.auth import Principal
from api.budget import Budget
from modq.errors import BrokerUnavailable, DeadlineExceeded, InvalidContent

IDEMPOTENCY_HEADER = "idempotency-key"
RETRY_COUNT_HEADER = "x-stainless-retry-count"
KEY_PREFIX = "modq:api:once:"
MAX_TOKEN_CHARS = 255
ADMIT_GRACE_S = 5.0  # past its deadline, a caller waits this long at most to learn of a refusal
POLL_S = 0.2  # a repeat reads the first attempt's record this often while it runs
RUNNING_GRACE_S = 30.0  # a running record outlives its work's own deadline by this much
# delete the record only if it still holds our token, in one step: a first attempt of the openai
# client (written without NX) may overwrite it between a read and a delete
RELEASE_LUA = """
local raw = redis.call('GET', KEYS[1])
if raw and cjson.decode(raw)['token'] == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

Answer = TypeVar("Answer", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Claim:
    """Where a request's answer is recorded, and whether it may attach to an earlier one."""

    record_key: str
    fingerprint: str
    attach: bool


def fingerprint(path: str, body: BaseModel) -> str:
    """The request as a retry sends it again: route and parsed body (not its whitespace)."""
    return hashlib.sha256(f"{path}\n{body.model_dump_json()}".encode()).hexdigest()


def claim_of(request: Request, principal: Principal, body: BaseModel) -> Claim | None:
    """The request's claim, or None when it carries neither header (it simply runs)."""
    print_ = fingerprint(request.url.path, body)
    token = request.headers.get(IDEMPOTENCY_HEADER)
    if token is not None:
        if not token.strip() or len(token) > MAX_TOKEN_CHARS:
            raise InvalidContent(
                f"Idempotency-Key must be 1 to {MAX_TOKEN_CHARS} characters",
                field="Idempotency-Key",
            )
        digest = hashlib.sha256(token.encode()).hexdigest()
        return Claim(f"{KEY_PREFIX}key:{principal.key_id}:{digest}", print_, attach=True)
    count = request.headers.get(RETRY_COUNT_HEADER)
    if count is None:
        return None
    retry = count.strip().isdigit() and int(count) >= 1
    return Claim(f"{KEY_PREFIX}retry:{principal.key_id}:{print_}", print_, attach=retry)


class Replays:
    """``await run(claim, work, deadline_s=...)``: the work's answer, run once per claim."""

    def __init__(self, redis_url: str, *, answer_ttl_s: float, work_deadline_s: float) -> None:
        self._redis: Redis = Redis.from_url(redis_url)
        self._answer_ttl_ms = int(answer_ttl_s * 1000)
        self._running_ttl_ms = int((work_deadline_s + RUNNING_GRACE_S) * 1000)
        self.work_deadline_s = work_deadline_s  # how long claimed work waits for its result
        self._tasks: set[asyncio.Task[Any]] = set()
        self._release_script = self._redis.register_script(RELEASE_LUA)

    async def run(
        self,
        claim: Claim | None,
        work: Callable[[Budget], Awaitable[Answer]],
        answer_type: type[Answer],
        *,
        deadline_s: float,
    ) -> Answer:
        """``work(budget)``'s answer. Unclaimed: run within ``deadline_s``. Claimed: run once
        (admitted within ``deadline_s``, its result awaited in a task that outlives the
        caller's deadline), or the earlier answer."""
        if claim is None:
            return await work(Budget.within(deadline_s))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + deadline_s
        # the deadline is checked by hand, never by cancelling: the Redis client may swallow a
        # cancellation, and the work must go on past the caller's deadline anyway
        try:
            while True:
                token = uuid.uuid4().hex
                if await self._claim(claim, token):
                    budget = Budget(deadline_s, self.work_deadline_s)
                    task = loop.create_task(self._finish(claim, token, work, budget))
                    self._tasks.add(task)
                    task.add_done_callback(self._forget)
                    return await self._answer_or_refusal(task, budget, deadline)
                answer = await self._earlier_answer(claim, deadline)
                if answer is not None:
                    return answer_type.model_validate(answer)
                # the earlier attempt failed and let its claim go: run it afresh
        except TimeoutError:
            raise DeadlineExceeded(
                f"no answer within {deadline_s:g} s; the work goes on: send the same request "
                "again (same Idempotency-Key) to get its answer without running it twice",
                retry="same request",
            ) from None
        except RedisError as exc:
            raise BrokerUnavailable(f"cannot record the request: {type(exc).__name__}") from exc

    async def _answer_or_refusal(
        self, task: asyncio.Task[Answer], budget: Budget, deadline: float
    ) -> Answer:
        """The task's answer by ``deadline``; past it TimeoutError (503: the work goes on)
        once the work is enqueued, or the work's own refusal (429) if it never was: its wait
        for a slot ends at the same deadline."""
        loop = asyncio.get_running_loop()
        done, _ = await asyncio.wait({task}, timeout=max(0.0, deadline - loop.time()))
        if not done:
            admitted = loop.create_task(budget.admitted.wait())
            try:
                waits: set[asyncio.Task[Any]] = {task, admitted}
                done, _ = await asyncio.wait(
                    waits, timeout=ADMIT_GRACE_S, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                admitted.cancel()
            if task not in done:
                raise TimeoutError
        return task.result()

    async def _claim(self, claim: Claim, token: str) -> bool:
        record = json.dumps({"state": "running", "fingerprint": claim.fingerprint, "token": token})
        # a first attempt of the openai client (attach=False) always runs, and becomes the
        # latest with its fingerprint
        claimed = await self._redis.set(
            claim.record_key, record, px=self._running_ttl_ms, nx=claim.attach
        )
        return bool(claimed)

    async def _earlier_answer(self, claim: Claim, deadline: float) -> dict[str, Any] | None:
        """The earlier attempt's answer once it has one; None when its claim is gone;
        TimeoutError at ``deadline`` (the loop's clock)."""
        loop = asyncio.get_running_loop()
        while True:
            raw = await self._redis.get(claim.record_key)
            if raw is None:
                return None
            record = json.loads(raw)
            if record.get("fingerprint") != claim.fingerprint:
                raise InvalidContent(
                    "this Idempotency-Key was used with another request body",
                    field="Idempotency-Key",
                )
            if record.get("state") == "done":
                answer: dict[str, Any] = record["answer"]
                return answer
            left_s = deadline - loop.time()
            if left_s <= 0:
                raise TimeoutError
            await asyncio.sleep(min(POLL_S, left_s))

    async def _finish(
        self,
        claim: Claim,
        token: str,
        work: Callable[[Budget], Awaitable[Answer]],
        budget: Budget,
    ) -> Answer:
        try:
            answer = await work(budget)
        except BaseException:
            # nothing to replay: a repeat runs afresh (and meets the same refusal, if any)
            with contextlib.suppress(RedisError):
                await self._release(claim, token)
            raise
        record = {
            "state": "done",
            "fingerprint": claim.fingerprint,
            "token": token,
            "answer": answer.model_dump(mode="json"),
        }
        with contextlib.suppress(RedisError):  # the caller still gets its answer
            await self._redis.set(claim.record_key, json.dumps(record), px=self._answer_ttl_ms)
        return answer

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a caller past its deadline no longer awaits it

    async def _release(self, claim: Claim, token: str) -> None:
        """Let the claim go if it is still ours (compare-and-delete, atomic in Redis)."""
        await self._release_script(keys=[claim.record_key], args=[token])

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._redis.aclose()
