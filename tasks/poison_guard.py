"""The worker's task consumer, guarded (part of the dead-letter queue, tasks/dead_letters.py).

- ``PoisonGuardStep`` (a consumer bootstep, added when this module is imported: before the
  worker builds its consumer) guards the task consumer's channel: it dead-letters what it
  cannot deliver (``Channel.guard_poison``, modq's Redis transport), and a task message Celery
  cannot decode is parked rather than acknowledged away. Other channels are left alone.
- ``NoBodiesInRejections`` (on Celery's consumer logger) keeps the body and headers of a
  message Celery turns away out of the log.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import bootsteps

from modq.broker.dead_letters import describe
from modq.settings import get_settings
from tasks.app import app

__all__ = ["NoBodiesInRejections", "PoisonGuardStep", "install_log_filter"]


class NoBodiesInRejections(logging.Filter):
    """Celery logs the body and headers of a message it turns away (which may hold the text
    and the user id); its log line says only which kind of rejection it was, and what became
    of the message: task messages are in the dead-letter queue; a message Celery's own
    ``on_decode_error`` handles is not a task message (``PoisonGuardStep`` parks those), but a
    control message (another app sharing the broker, pickle) that Celery dropped."""

    DROPPED = (
        "modq: Celery dropped a control message it cannot decode (%s, content type %s; another "
        "app sharing this broker?): not a job, nothing dead-lettered, body not logged"
    )

    def __init__(self) -> None:
        super().__init__()
        from celery.worker.consumer import consumer

        self.kinds = {
            consumer.UNKNOWN_FORMAT: "no task name in the message",
            consumer.UNKNOWN_TASK_ERROR: "a task this worker does not know",
            consumer.INVALID_TASK_ERROR: "an invalid task message",
        }
        self.decode_error = consumer.MESSAGE_DECODE_ERROR

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == self.decode_error:
            args = record.args if isinstance(record.args, tuple) else ()
            record.msg = self.DROPPED
            error_type = type(args[0]).__name__ if args else "?"
            record.args = (error_type, args[1] if len(args) > 1 else "?")
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info = record.exc_text = None
            return True
        kind = self.kinds.get(record.msg) if isinstance(record.msg, str) else None
        if kind is not None:
            record.msg = "modq: Celery turned away a message (%s): dead-lettered, body not logged"
            record.args = (kind,)
            record.exc_info = record.exc_text = None
        return True


def install_log_filter() -> None:
    """Put ``NoBodiesInRejections`` on Celery's consumer logger, once per process."""
    logger = logging.getLogger("celery.worker.consumer.consumer")
    if not any(isinstance(f, NoBodiesInRejections) for f in logger.filters):
        logger.addFilter(NoBodiesInRejections())


install_log_filter()  # a worker imports this module at start (celeryconfig ``imports``)


class PoisonGuardStep(bootsteps.StartStopStep):
    """After Celery made the task consumer (at each start and reconnect): its channel
    dead-letters what it cannot deliver (on modq's Redis transport), and a task message that
    Celery cannot decode is parked, not acknowledged away. Other channels are left alone."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def start(self, parent: Any) -> None:
        consumer = parent.task_consumer
        guard = getattr(consumer.channel, "guard_poison", None)
        if guard is not None:
            guard(max_message_bytes=get_settings().max_message_bytes)
        consumer.on_decode_error = _park_undecodable


def _park_undecodable(message: Any, exc: BaseException) -> None:
    """Celery's ``on_decode_error`` for task messages: parked (``bad_message``) and acked."""
    from tasks.dead_letters import dead_letter_message

    dead_letter_message(message, reason="bad_message", error=describe(exc))


app.steps["consumer"].add(PoisonGuardStep)  # before the worker builds its consumer
