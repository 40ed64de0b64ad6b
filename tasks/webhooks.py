"""`deliver_webhook`: a job's outcome POSTed, signed, to the callback_url its producer gave.

The API sends a moderate job with this task as its ``link`` (success) and ``link_error``
(failure), so the worker that finishes the job enqueues the delivery on the job's own priority
queue: an API restart loses nothing. A delivery that fails (no connection, timeout, any status
but 2xx) is retried with exponential backoff and jitter, up to ``webhook_max_attempts``; a URL
refused by the host policy is given up at once. Every attempt carries the same ``Modq-Delivery``
id, so a receiver can drop a duplicate (a retry after a reply that was lost).
"""

from __future__ import annotations

import logging
import random
import socket
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from celery import Task
from celery.exceptions import MaxRetriesExceededError

from modq import errors
from modq.contract import DELIVER_WEBHOOK
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
    """The wait before retry ``attempt`` (1 = the 2nd try): doubling, capped, with jitter."""
    settings = get_settings()
    ceiling = min(
        settings.webhook_backoff_max_s, settings.webhook_backoff_base_s * 2 ** (attempt - 1)
    )
    return ceiling * random.uniform(0.5, 1.0)


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
) -> None:
    """POST the job's outcome to ``callback_url``: ``result`` is the job's result (``link``)
    or its task id (``link_error``, event ``job.failed``)."""
    settings = get_settings()
    attempt = self.request.retries + 1
    host = urlsplit(callback_url).hostname
    if settings.webhook_secret is None:
        logger.error("webhook for job %s not sent: MODQ_WEBHOOK_SECRET is not set", job_id)
        return
    if event == SUCCEEDED:
        body = webhook_body(SUCCEEDED, job_id, result=result)
    else:
        body = webhook_body(FAILED, job_id, error=_error_of(self, job_id))
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
        failure = None if 200 <= status < 300 else f"status {status}"
    except InvalidContent as exc:
        logger.warning("webhook for job %s to %s refused: %s", job_id, host, exc.message)
        return
    except (OSError, ValueError) as exc:  # URLError, timeouts, refused connections
        failure = type(exc).__name__
    if failure is None:
        logger.info("webhook for job %s delivered to %s (attempt %d)", job_id, host, attempt)
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
    try:
        raise self.retry(countdown=delay_s, max_retries=settings.webhook_max_attempts - 1)
    except MaxRetriesExceededError:
        logger.warning("webhook for job %s to %s given up (%s)", job_id, host, failure)
