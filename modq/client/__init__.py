"""What apps import: the producer side of modq's tasks, on a Celery app of its own.

    from modq import moderate, moderate_many, record_review, configure

No model, no SQL, no torch: celery, kombu, redis and pydantic only.
"""

from modq.client.app import app, configure
from modq.client.tasks import moderate, moderate_many, record_review

__all__ = ["app", "configure", "moderate", "moderate_many", "record_review"]
