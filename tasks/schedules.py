"""A job's schedule as the worker receives it: an ETA too far ahead, an ``expires`` that passed.

Every job ends stored, as a typed failure, or dead-lettered (docs/dead-letters.md). Two
schedule headers used to escape that promise on messages that skipped the producer's checks
(``modq.broker.config.check_schedule``: a raw writer, a stock ``send_task``):

- **An ETA beyond what a worker may hold** (``eta_problem``). A worker holds a job with an ETA
  unacknowledged until it is due; one held past the broker's visibility timeout (RabbitMQ:
  its consumer timeout) is redelivered meanwhile and held again, in copies (a raw ETA in year
  2999 was held 6 times). The strategy guard (``tasks.dead_letters.guarded_strategy``) asks
  this module first: such a message is dead-lettered once (reason ``eta_too_far``) and
  acknowledged, never held; its caller gets ``PoisonMessage``. The bound is the producer's
  (``max_countdown_s``: ``MODQ_MAX_COUNTDOWN_S``, else half the visibility timeout) plus
  ``ETA_GRACE_S`` for clocks that disagree between hosts. A retry (``retries`` > 0 in its
  headers) is the worker's own: the producer lets it pass, and so does the worker, up to the
  longest delay a worker itself schedules (``longest_own_delay_s``: the retry schedule's and
  the webhook backoff's longest pause) plus the grace. A raw message that merely says it is a
  retry, with an ETA in 2999, is still refused once and never held.
- **An ``expires`` that passed** (at receipt, or while the job waited for its ETA or in the
  prefetch). Celery revoked it: state ``REVOKED``, nothing stored, nothing parked. Every
  task's Request (``tasks.redaction.RedactedRequest``) hands an expiry to ``expire_request``
  instead: a ``JobExpired`` FAILURE under its id and the whole message dead-lettered (kind and
  reason ``expired``), so `modq dlq retry` can send it again under that id.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from modq.broker import dead_letters
from modq.broker.config import max_countdown_s
from modq.broker.dead_letters import park
from modq.errors import JobExpired
from modq.settings import Settings, get_settings

log = logging.getLogger(__name__)

ETA_GRACE_S = 60.0  # the producer checked against its own clock: allow this much skew
EXPIRED = "expired"  # the dead-letter kind and reason of a job whose ``expires`` passed


def eta_problem(headers: Any, settings: Settings | None = None) -> str | None:
    """Why a message's ETA is too far ahead for a worker to hold it (None if it is not, or
    if it has none or one Celery itself refuses: an unreadable ETA is Celery's to reject)."""
    eta = _when(headers, "eta")
    if eta is None:
        return None
    settings = settings or get_settings()
    limit_s = max_countdown_s(settings)
    if _is_retry(headers):
        limit_s = max(limit_s, longest_own_delay_s(settings))
    limit_s += ETA_GRACE_S
    ahead_s = (eta - dt.datetime.now(dt.UTC)).total_seconds()
    if ahead_s <= limit_s:
        return None
    return (
        f"ETA {ahead_s:.0f} s ahead, beyond the {limit_s:.0f} s a worker may hold a job "
        "(held longer, the broker redelivers it while it waits and it runs in copies); "
        "schedule it outside modq, or raise MODQ_VISIBILITY_TIMEOUT_S and MODQ_MAX_COUNTDOWN_S"
    )


def longest_own_delay_s(settings: Settings) -> float:
    """The longest countdown a worker gives a retry of its own: the retry schedule's longest
    delay (``tasks.retry_policy``) or the webhook backoff's, whichever is longer."""
    return max(settings.retry_delay_max_s, settings.webhook_backoff_max_s)


def _is_retry(headers: Any) -> bool:
    """Whether a protocol-2 message's headers say it is a retry (``retries`` > 0)."""
    retries = headers.get("retries") if isinstance(headers, dict) else None
    return isinstance(retries, int) and not isinstance(retries, bool) and retries > 0


def expired_problem(headers: Any) -> str | None:
    """Why a message is not run because its ``expires`` passed (None if it has not)."""
    expires = _when(headers, "expires")
    if expires is None:
        return None
    late_s = (dt.datetime.now(dt.UTC) - expires).total_seconds()
    if late_s <= 0:
        return None
    return f"expired {late_s:.0f} s before a worker could run it (expires {expires.isoformat()})"


def _when(headers: Any, key: str) -> dt.datetime | None:
    """A protocol-2 header's datetime (aware, UTC if naive); None if absent or unreadable."""
    value = headers.get(key) if isinstance(headers, dict) else None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, dt.datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def store_expired(task_id: str, why: str, request: Any = None) -> None:
    """A ``JobExpired`` FAILURE under ``task_id`` (a REVOKED state is overwritten; a SUCCESS
    never is, by Celery's own rule). With the job's ``request`` (its task context), Celery
    calls its errbacks too (``link_error``: a ``callback_url``'s ``job.failed`` webhook)."""
    from tasks.app import app

    app.backend.mark_as_failure(task_id, JobExpired(why, task_id=task_id), request=request)


def expire_request(request: Any) -> None:
    """Celery found ``request``'s ``expires`` passed (at receipt, or when its ETA came): instead
    of a REVOKED state, a ``JobExpired`` FAILURE under its id (its errbacks called), the whole
    message dead-lettered (kind and reason ``expired``), the message acknowledged, and its id
    taken back out of the worker's revoked set (an expiry is no operator's revoke: `modq dlq
    retry` may run it). If neither the failure nor the entry could be recorded, the message is
    left unacknowledged: the broker hands it out again and it is expired again then.
    ``RedactedRequest._announce_revoked`` (every task's Request) calls this."""
    from celery import signals
    from celery.worker import state

    from tasks.dead_letters import leave_unacknowledged, raw_item

    why = expired_problem(getattr(request, "_request_dict", None)) or "expired before it ran"
    state.task_ready(request)
    request._already_revoked = True  # never run here, whatever asks again
    recorded = False
    try:
        store_expired(request.id, why, request=request._context)
        recorded = True
    except Exception as exc:
        log.error(
            "modq: cannot store expired job %s or send its errbacks (%s)",
            request.id,
            type(exc).__name__,
        )
    try:
        entry = dead_letters.poison_entry(
            raw_item(request._message),
            queue=(request.delivery_info or {}).get("routing_key"),
            reason=EXPIRED,
            error=f"JobExpired: {why}",
        )
        entry.kind = EXPIRED
        park(entry)
        recorded = True
    except Exception as exc:
        log.error("modq: cannot dead-letter expired job %s (%s)", request.id, type(exc).__name__)
    state.revoked.discard(request.id)
    if not recorded:  # never lose it: redelivered after the visibility timeout
        leave_unacknowledged(request._message)
        return
    request.send_event("task-failed", exception=f"JobExpired({why!r})")
    request.acknowledge()
    signals.task_revoked.send(
        sender=request.task, request=request._context, terminated=False, signum=None, expired=True
    )
