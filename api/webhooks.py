"""The producer side of webhooks: a moderate job sent with its result's delivery attached.

``enqueue_with_callback(moderate, job, callback_url=...)`` checks the URL, then sends the job
with ``modq.deliver_webhook`` as its ``link`` (result) and ``link_error`` (failure). The worker
that finishes the job enqueues the delivery on the ``webhooks`` queue, which only ``modq
webhooks`` consumes: nothing waits in the API, and no delivery runs in a thread that moderates.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from celery import Task
from celery.canvas import Signature
from celery.result import AsyncResult

from modq.contract import DELIVER_WEBHOOK, WEBHOOK_QUEUE
from modq.errors import InvalidContent
from modq.schemas import parse_priority
from modq.settings import get_settings
from modq.webhooks import FAILED, SUCCEEDED, allowed_host_patterns, check_callback_url


def checked_callback_url(url: object) -> str:
    """``url`` if webhooks are on and it passes the host policy, else InvalidContent."""
    settings = get_settings()
    if settings.webhook_secret is None:
        raise InvalidContent(
            "callback_url is not accepted: webhooks are off on this server "
            "(MODQ_WEBHOOK_SECRET is not set)",
            field="callback_url",
        )
    return check_callback_url(url, allowed_host_patterns(settings.webhook_allowed_hosts))


def webhook_options(
    callback_url: str, *, priority: str, job_id: str | None = None, app: Any = None
) -> dict[str, Any]:
    """``apply_async`` options that deliver a job's outcome to ``callback_url``: ``task_id``
    (the job id the webhook carries), ``link`` and ``link_error``."""
    url = checked_callback_url(callback_url)
    level = parse_priority(priority).value
    job_id = job_id or str(uuid.uuid4())

    def delivery(event: str) -> Signature:
        kwargs = {"callback_url": url, "job_id": job_id, "priority": level, "event": event}
        return Signature(DELIVER_WEBHOOK, kwargs=kwargs, options={"queue": WEBHOOK_QUEUE}, app=app)

    return {"task_id": job_id, "link": delivery(SUCCEEDED), "link_error": delivery(FAILED)}


def enqueue_with_callback(
    task: Task | Signature,
    job: Mapping[str, Any],
    *,
    callback_url: str,
    job_id: str | None = None,
) -> AsyncResult:
    """Send ``task`` (``modq.moderate`` from the client, or a stock app's signature of it) with
    ``job`` as its kwargs, its outcome to be POSTed, signed, to ``callback_url``. Raises what
    ``task.apply_async`` raises."""
    options = webhook_options(
        callback_url, priority=str(job.get("priority", "normal")), job_id=job_id, app=task.app
    )
    return task.apply_async(kwargs=dict(job), **options)
