"""The Celery application (``celery -A tasks worker``)."""

from celery import Celery

app = Celery("modq")
app.config_from_object("celeryconfig")
