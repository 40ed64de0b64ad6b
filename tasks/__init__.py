"""Celery app, the moderate tasks and worker signals (``celery -A tasks worker``)."""

from tasks import control as _control  # noqa: F401  (registers remote control commands)
from tasks import heartbeat as _heartbeat  # noqa: F401  (the readiness heartbeat)
from tasks import signals as _signals  # noqa: F401  (connects worker signals)
from tasks.app import app
from tasks.moderate import moderate, moderate_many
from tasks.reviews import record_review
from tasks.shadow import moderate_shadow
from tasks.webhooks import deliver_webhook

__all__ = [
    "app",
    "deliver_webhook",
    "moderate",
    "moderate_many",
    "moderate_shadow",
    "record_review",
]
