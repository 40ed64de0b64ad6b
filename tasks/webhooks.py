"""`deliver_webhook`: a job's outcome POSTed, signed, to the callback_url its producer gave.

The API sends a moderate job with this task as its ``link`` (success) and ``link_error``
(failure), so the worker that finishes the job enqueues the delivery: an API restart loses
nothing. Deliveries go on a queue of their own (``webhooks``, ``modq.contract.WEBHOOK_QUEUE``)
that only ``modq webhooks`` consumes: a receiver that hangs holds a delivery thread for at most
``webhook_timeout_s``, never a thread that moderates. At most ``webhook_host_concurrency``
deliveries run per receiver host; one that finds its host full goes back on the queue for
later without counting an attempt, so a hanging host cannot take every delivery thread either.

A delivery that fails (no connection, timeout, any status but 2xx) is retried on the project's
one backoff schedule (``tasks.retry_policy.RetrySchedule``: doubling from
``webhook_backoff_base_s`` to ``webhook_backoff_max_s``, equal jitter), up to
``webhook_max_attempts``; a URL refused by the host policy is given up at once. Every attempt
carries the same ``Modq-Delivery`` id, so a receiver can drop a duplicate (a retry after a reply
that was lost).
"""

from __future__ import annotations

import logging
import socket
import threading
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from celery import Task

from modq import errors
from modq.contract import DELIVER_WEBHOOK, WEBHOOK_QUEUE
from modq.errors import InvalidContent
from modq.settings import get_settings
from modq.webhooks import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    FAILED,
    SIGNATURE_HEADER,
    SUCCEEDED,
    allowed_host_patterns,
    check_callback_url,
    host_listed,
    is_public_address,
    sign,
    webhook_body,
)
from tasks.app import app
from tasks.retry_policy import RetrySchedule
from tasks.webhook_slots import HostSlots

logger = logging.getLogger(__name__)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is a failed delivery, never followed (it could lead anywhere: SSRF)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def _check_resolved_host(url: str) -> None:
    """Without an allow-list, every address the host resolves to must be public."""
    patterns = allowed_host_patterns(get_settings().webhook_allowed_hosts)
    check_callback_url(url, patterns)
    parts = urlsplit(url)
    host = parts.hostname or ""
    if patterns and host_listed(host, patterns):
        return
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise ConnectionError(f"cannot resolve the callback host: {exc}") from exc
    if not all(is_public_address(str(info[4][0])) for info in infos):
        raise InvalidContent("callback_url resolves to a non-public address", field="callback_url")


def _error_of(task: Task, job_id: str) -> dict[str, str]:
    """A failed job's error as ``{"code", "message"}``: modq's own errors say what; anything
    else is reported as an internal error, without its details."""
    stored = task.app.backend.get_task_meta(job_id).get("result")
    if isinstance(stored, BaseException):  # the backend rebuilds the exception it stored
        name, message = type(stored).__name__, stored.args[0] if stored.args else ""
    elif isinstance(stored, dict):
        raw = stored.get("exc_message") or ("",)
        name = str(stored.get("exc_type"))
        message = raw[0] if isinstance(raw, list | tuple) and raw else raw
    else:
        name, message = "", ""
    found = getattr(errors, name, None)
    if isinstance(found, type) and issubclass(found, errors.ModerationError):
        return {"code": found.code, "message": str(message)}
    return {"code": "internal_error", "message": "the job failed"}


def backoff_s(attempt: int) -> float:
    """The wait before attempt ``attempt + 1`` (1 = before the 2nd try): the project's one
    schedule (``RetrySchedule``) over the webhook settings; attempts, not a time budget, bound
    a delivery."""
    settings = get_settings()
    schedule = RetrySchedule(
        base_s=settings.webhook_backoff_base_s,
        max_s=settings.webhook_backoff_max_s,
        budget_s=0.0,
    )
    return schedule.delay_s(attempt - 1)


def defer_s() -> float:
    """How long a delivery whose host is full waits on the queue before it looks again: the
    first step of the backoff (``webhook_backoff_base_s``, with jitter, so deferred ones spread
    out). Not an attempt: the receiver was not called."""
    return backoff_s(1)


_slots: HostSlots | None = None
_slots_lock = threading.Lock()


def host_slots() -> HostSlots:
    """This process's slots per receiver host (``webhook_host_concurrency``)."""
    global _slots
    with _slots_lock:
        if _slots is None:
            _slots = HostSlots(get_settings().webhook_host_concurrency)
        return _slots


def consumes_only_webhooks(celery_app: object) -> bool:
    """Whether this worker consumes the webhooks queue and nothing else (``modq webhooks``):
    it loads no model and never reports itself as serving moderation."""
    amqp = getattr(celery_app, "amqp", None)
    names = set(getattr(getattr(amqp, "queues", None), "consume_from", None) or ())
    return names == {WEBHOOK_QUEUE}


def _post(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _OPENER.open(request, timeout=timeout_s) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@app.task(bind=True, name=DELIVER_WEBHOOK, ignore_result=True, max_retries=None)
def deliver_webhook(
    self: Task,
    result: Any,
    callback_url: str,
    job_id: str,
    priority: str = "normal",
    event: str = SUCCEEDED,
    attempt: int = 1,
) -> None:
    """POST the job's outcome to ``callback_url``: ``result`` is the job's result (``link``)
    or its task id (``link_error``, event ``job.failed``). ``priority`` is the job's (kept for
    the record: deliveries have one queue); ``attempt`` counts tries, 1 first."""
    kwargs = {
        "callback_url": callback_url,
        "job_id": job_id,
        "priority": priority,
        "event": event,
        "attempt": attempt,
    }
    queue = (self.request.delivery_info or {}).get("routing_key")
    if queue not in (None, WEBHOOK_QUEUE):  # sent before deliveries had their own queue
        self.apply_async(args=(result,), kwargs=kwargs, queue=WEBHOOK_QUEUE)
        logger.info("webhook for job %s moved from queue %r to %r", job_id, queue, WEBHOOK_QUEUE)
        return
    settings = get_settings()
    host = urlsplit(callback_url).hostname or ""
    if settings.webhook_secret is None:
        logger.error("webhook for job %s not sent: MODQ_WEBHOOK_SECRET is not set", job_id)
        return
    with host_slots().holding(host) as got_slot:
        if got_slot:
            failure = _attempt(self, result, callback_url, job_id, event, settings)
    if not got_slot:  # back on the queue, holding no thread; not an attempt
        raise self.retry(args=(result,), kwargs=kwargs, countdown=defer_s(), max_retries=None)
    if failure is None:
        logger.info("webhook for job %s delivered to %s (attempt %d)", job_id, host, attempt)
        return
    if failure == _REFUSED:
        return
    if attempt >= settings.webhook_max_attempts:
        logger.warning(
            "webhook for job %s to %s given up after %d attempts (%s)",
            job_id,
            host,
            attempt,
            failure,
        )
        return
    delay_s = backoff_s(attempt)
    logger.info(
        "webhook for job %s to %s failed (%s), attempt %d; retrying in %.1f s",
        job_id,
        host,
        failure,
        attempt,
        delay_s,
    )
    raise self.retry(
        args=(result,),
        kwargs={**kwargs, "attempt": attempt + 1},
        countdown=delay_s,
        max_retries=None,
    )


_REFUSED = "refused by the host policy"


def _attempt(
    task: Task, result: Any, callback_url: str, job_id: str, event: str, settings: Any
) -> str | None:
    """One POST: None when delivered, else why not (``_REFUSED``: never to be retried)."""
    if event == SUCCEEDED:
        body = webhook_body(SUCCEEDED, job_id, result=result)
    else:
        body = webhook_body(FAILED, job_id, error=_error_of(task, job_id))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "modq-webhooks/1",
        SIGNATURE_HEADER: sign(settings.webhook_secret.get_secret_value().encode(), body),
        DELIVERY_HEADER: f"{job_id}:{event}",
        EVENT_HEADER: event,
    }
    try:
        _check_resolved_host(callback_url)
        status = _post(callback_url, body, headers, settings.webhook_timeout_s)
    except InvalidContent as exc:
        host = urlsplit(callback_url).hostname
        logger.warning("webhook for job %s to %s refused: %s", job_id, host, exc.message)
        return _REFUSED
    except (OSError, ValueError) as exc:  # URLError, timeouts, refused connections
        return type(exc).__name__
    return None if 200 <= status < 300 else f"status {status}"
