"""Checks a worker runs once at start (``worker_init``), before it takes a job.

- **A volatile broker is refused.** A Redis with neither AOF nor RDB loses every queued and
  in-flight job when it restarts, silently. Such a worker exits with the reason, unless
  ``MODQ_ALLOW_VOLATILE_BROKER=1`` (then it logs the same reason as an error and starts).
  A Redis whose ACL refuses ``CONFIG`` is judged by ``INFO persistence`` (AOF on: fine),
  else the worker says that it could not tell, and starts.
- **The visibility timeout is checked** against the longest retry delay of the worker's
  tasks and the longest countdown/ETA producers may ask for (``MODQ_MAX_COUNTDOWN_S``). On
  Redis a job held longer than the visibility timeout is redelivered while it waits and runs
  in copies (the result row stays single: writes are idempotent), so this is logged as an
  error rather than refused.

docs/redis.md says how to run Redis for modq.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from modq.broker.config import max_countdown_s
from modq.settings import Settings

log = logging.getLogger(__name__)

VOLATILE = (
    "modq: the broker Redis keeps nothing on disk (appendonly no, save ''): a Redis restart "
    "loses every queued and in-flight job, silently. Turn on AOF (appendonly yes, "
    "appendfsync everysec) or RDB snapshots (docs/redis.md), or set "
    "MODQ_ALLOW_VOLATILE_BROKER=1 to run on it anyway."
)
RDB_ONLY = (
    "modq: the broker Redis persists by RDB snapshots only (save {save!r}): a crash loses the "
    "jobs queued since the last snapshot; AOF (appendonly yes) loses at most ~1 s "
    "(docs/redis.md)."
)
UNKNOWN = (
    "modq: cannot tell whether the broker Redis persists its queues ({why}); make sure AOF "
    "or RDB is on (docs/redis.md)."
)
VISIBILITY = (
    "modq: visibility timeout {visibility_s:.0f} s is not longer than {what} ({delay_s:.0f} s): "
    "a job held that long is redelivered while it waits and runs in copies. Raise "
    "MODQ_VISIBILITY_TIMEOUT_S (docs/delivery.md)."
)


@dataclass(frozen=True)
class Persistence:
    """What a Redis keeps on disk, as far as it lets us see."""

    appendonly: bool | None  # None: could not tell
    save: str | None  # RDB schedule; "" = none; None: could not tell
    refused: str | None = None  # why we could not read the configuration

    @property
    def volatile(self) -> bool:
        return self.appendonly is False and self.save == ""


def read_persistence(client: Any) -> Persistence:
    """``CONFIG GET appendonly / save``; when CONFIG is refused (an ACL without it, a renamed
    command), ``INFO persistence`` tells whether AOF is on, and RDB stays unknown."""
    from redis.exceptions import NoPermissionError, ResponseError

    try:
        appendonly = client.config_get("appendonly").get("appendonly")
        save = client.config_get("save").get("save")
        return Persistence(appendonly=appendonly == "yes", save=save)
    except (NoPermissionError, ResponseError) as exc:
        refused = f"CONFIG refused: {type(exc).__name__}"
    try:
        info = client.info("persistence")
    except (NoPermissionError, ResponseError):
        return Persistence(appendonly=None, save=None, refused=refused + ", INFO refused")
    return Persistence(appendonly=bool(info.get("aof_enabled")), save=None, refused=refused)


def check_broker_persistence(broker_url: str, settings: Settings) -> None:
    """Refuse (``SystemExit``) a volatile Redis broker unless allowed; log what is unsure."""
    if broker_url.partition("://")[0] not in ("redis", "rediss"):
        return  # RabbitMQ and others: durability is the queue's own setting
    from redis import Redis
    from redis.exceptions import RedisError

    client = Redis.from_url(broker_url, socket_connect_timeout=2, socket_timeout=2)
    try:
        found = read_persistence(client)
    except (RedisError, OSError) as exc:
        log.warning(UNKNOWN.format(why=f"unreachable at start: {type(exc).__name__}"))
        return
    finally:
        client.close()
    if found.volatile:
        if not settings.allow_volatile_broker:
            raise SystemExit(VOLATILE)  # Celery only logs a handler's Exception and goes on
        log.error(VOLATILE)
    elif found.appendonly is None or (found.appendonly is False and found.save is None):
        log.warning(UNKNOWN.format(why=found.refused))
    elif found.appendonly is False:
        log.warning(RDB_ONLY.format(save=found.save))


def longest_retry_delay_s(tasks: Iterable[Any]) -> float:
    """The longest pause before a retry of any of ``tasks``: the retry schedule's longest
    delay (``tasks.retry_policy``, where it exists), and each task's own Celery options."""
    delays = [0.0]
    try:
        from tasks.retry_policy import current_schedule
    except ImportError:  # an older tree: the tasks' Celery options alone
        pass
    else:
        delays.append(current_schedule().longest_delay_s())
    for task in tasks:
        if getattr(task, "retry_backoff", False):
            delays.append(float(getattr(task, "retry_backoff_max", 600)))
    return max(delays)


def check_visibility_timeout(settings: Settings, tasks: Iterable[Any]) -> list[str]:
    """The problems with the visibility timeout (each also logged as an error)."""
    visibility_s = float(settings.visibility_timeout_s)
    limits = {
        # a webhook's backoff is a retry the worker schedules itself (tasks.schedules)
        "the longest retry delay": max(
            longest_retry_delay_s(tasks), settings.webhook_backoff_max_s
        ),
        "the longest countdown/ETA allowed": max_countdown_s(settings),
    }
    problems = [
        VISIBILITY.format(visibility_s=visibility_s, what=what, delay_s=delay_s)
        for what, delay_s in limits.items()
        if delay_s >= visibility_s
    ]
    for problem in problems:
        log.error(problem)
    return problems


def run_startup_checks(app: Any, settings: Settings) -> None:
    """Every check, in order; a refusal raises ``SystemExit`` with its reason."""
    check_broker_persistence(str(app.conf.broker_url), settings)
    modq_tasks = [task for name, task in app.tasks.items() if name.startswith("modq.")]
    check_visibility_timeout(settings, modq_tasks)
