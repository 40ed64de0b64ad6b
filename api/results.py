"""Waiting on a job's result without a thread per request: one Redis pub/sub connection per
API process.

Celery's Redis result backend SETs a job's result key and PUBLISHes the same value on a channel
named like the key. A waiter subscribes to its job's channel and, once Redis confirms the
subscription, reads the key (a result stored before it), then sleeps until the message comes or
its deadline passes, reading the key again every ``RECHECK_S`` in case a message was lost (a
reconnect drops what was published meanwhile).
Celery's own ``AsyncResult.get`` drains one pub/sub connection from the calling thread, which is
not safe from many threads at once; this waiter serves any number of requests on one event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from celery import states
from redis.asyncio import Redis
from redis.exceptions import RedisError

from modq.errors import BrokerUnavailable, DeadlineExceeded, JobFailed, ModerationError

log = logging.getLogger(__name__)

READER_POLL_S = 1.0  # the reader notices close() this fast
SUBSCRIBE_TIMEOUT_S = 1.0  # longest wait for Redis to confirm a subscription
RECHECK_S = 1.0  # a waiter reads its key again this often (belt and braces: a lost message)


class ResultWaiter:
    """``await wait(job_id, timeout_s)``: the job's result meta once it is ready."""

    def __init__(self, backend: Any, redis_url: str) -> None:
        self._backend = backend  # the client app's Celery result backend: key names, decoding
        self._redis: Redis = Redis.from_url(redis_url)
        self._pubsub = self._redis.pubsub()
        self._futures: dict[str, set[asyncio.Future[dict[str, Any]]]] = {}
        self._subscribed: dict[str, asyncio.Event] = {}
        self._reader: asyncio.Task[None] | None = None

    def key(self, job_id: str) -> str:
        key = self._backend.get_key_for_task(job_id)
        return key.decode() if isinstance(key, bytes) else str(key)

    async def meta(self, job_id: str) -> dict[str, Any] | None:
        """The job's stored result meta (any state), or None when nothing is stored yet."""
        try:
            raw = await self._redis.get(self.key(job_id))
        except RedisError as exc:
            raise BrokerUnavailable(f"cannot read results: {type(exc).__name__}") from exc
        return None if raw is None else dict(self._backend.decode_result(raw))

    async def wait(self, job_id: str, timeout_s: float) -> dict[str, Any]:
        """The ready meta (SUCCESS, FAILURE, REVOKED); DeadlineExceeded after ``timeout_s``."""
        channel = self.key(job_id)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        waiting = self._futures.setdefault(channel, set())
        first = not waiting
        waiting.add(future)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        try:
            # the deadline is also checked by hand: a cancellation swallowed inside the Redis
            # client would otherwise let the wait run on past it
            async with asyncio.timeout_at(deadline):
                if first:
                    confirmed = self._subscribed[channel] = asyncio.Event()
                    await self._pubsub.subscribe(channel)
                    self._start_reader()
                    # the key is read after Redis confirms the subscription: a result stored
                    # earlier is in the key, one stored later comes as a message
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(SUBSCRIBE_TIMEOUT_S):
                            await confirmed.wait()
                while True:
                    if loop.time() >= deadline:
                        raise TimeoutError
                    stored = await self.meta(job_id)
                    if stored is not None and stored.get("status") in states.READY_STATES:
                        return stored
                    remaining_s = deadline - loop.time()
                    done, _ = await asyncio.wait({future}, timeout=min(RECHECK_S, remaining_s))
                    if done:
                        return future.result()
        except TimeoutError:
            raise DeadlineExceeded(
                f"no result within {timeout_s:g} s; the job goes on: GET /v1/jobs/{job_id}",
                job_id=job_id,
            ) from None
        except RedisError as exc:
            raise BrokerUnavailable(f"cannot wait for results: {type(exc).__name__}") from exc
        finally:
            waiting.discard(future)
            if not waiting and self._futures.get(channel) is waiting:
                del self._futures[channel]
                self._subscribed.pop(channel, None)
                with contextlib.suppress(RedisError):
                    await self._pubsub.unsubscribe(channel)

    def _start_reader(self) -> None:
        if self._reader is None or self._reader.done():
            self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        while True:
            try:
                message = await self._pubsub.get_message(timeout=READER_POLL_S)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:  # reconnects on the next read
                log.warning("modq api: result channel: %s", type(exc).__name__)
                await asyncio.sleep(0.1)
                continue
            if message is None:
                continue
            channel = message["channel"]
            channel = channel.decode() if isinstance(channel, bytes) else str(channel)
            if message.get("type") == "subscribe":
                confirmed = self._subscribed.get(channel)
                if confirmed is not None:
                    confirmed.set()
                continue
            if message.get("type") != "message":
                continue
            meta = dict(self._backend.decode_result(message["data"]))
            if meta.get("status") not in states.READY_STATES:
                continue  # RETRY: the job goes on
            for future in self._futures.get(channel, ()):
                if not future.done():
                    future.set_result(meta)

    def outcome(self, meta: dict[str, Any]) -> Any:
        """A ready meta's return value; its error raised when the job failed."""
        if meta.get("status") == states.SUCCESS:
            return meta.get("result")
        if meta.get("status") == states.REVOKED:
            raise JobFailed("the job was revoked")
        error = self._backend.exception_to_python(meta.get("result"))
        if isinstance(error, ModerationError):
            raise error
        raise JobFailed(f"the job failed on the worker ({type(error).__name__})")

    async def aclose(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, RedisError):
                await self._reader
        with contextlib.suppress(RedisError):
            await self._pubsub.aclose()
        await self._redis.aclose()
