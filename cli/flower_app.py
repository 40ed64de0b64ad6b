"""The Celery app Flower runs on (``modq flower``): modq's own, reading no results.

Results hold user ids, so Flower's process gets no result backend: ``/api/task/result`` and
the synchronous ``/api/task/apply`` answer 503, and ``/api/task/async-apply`` still sends a
job (through modq's producer: checked, routed, redacted). Everything else Flower shows comes
from task events and ``inspect`` replies, which workers redact (tasks/redaction.py).
"""

from tasks import app

app.conf.result_backend = "disabled"

__all__ = ["app"]
