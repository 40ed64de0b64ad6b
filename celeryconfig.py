"""Celery keys only, for the worker (``celery -A tasks worker``); every value comes from
``modq.settings`` (environment, prefix MODQ_). The keys producers share with workers
(serialisation, queues, routing, the Redis transport) come from ``modq.broker.config``."""

from modq.broker.config import shared_celery_config
from modq.broker.result_store import RESULT_BACKENDS
from modq.settings import get_settings

_settings = get_settings()

# broker_url, result_backend, serializers (JSON only), task_queues, task_routes,
# broker_transport(_options), publish retry policy, result expiry
globals().update(shared_celery_config(_settings))

# redis:// results through modq's backend, whose waiters outlive a Redis restart
override_backends = RESULT_BACKENDS

# A job is acknowledged only after its result is stored; a lost worker means redelivery.
task_acks_late = True
task_reject_on_worker_lost = True
worker_cancel_long_running_tasks_on_connection_loss = True

# Queues drained strictly urgent -> normal -> bulk: on Redis, 'priority' follows the order of
# the worker's -Q list (never 'sorted', which is alphabetical: bulk first). Callbacks of a
# chain, link or chord go to the app's own queues, which the worker creates as it sends.
task_create_missing_queues = True
worker_prefetch_multiplier = _settings.prefetch_multiplier

# Threads share the process's one model and batcher; several processes = several workers.
worker_pool = "threads"
worker_concurrency = _settings.worker_threads

# Revoked task ids survive a restart: each node keeps them in its own state file (%n = node
# name); workers run --without-mingle, so no other worker hands them back.
worker_state_db = _settings.worker_state_db or None

task_track_started = False
worker_hijack_root_logger = False

# Modules a worker imports at start: the wait-time recorder hooks task_prerun, the heap trimmer
# task_postrun, redaction filters the trace log (producers never import them).
imports = (
    "tasks.wait_time",
    "tasks.heap",
    "tasks.redaction",
    "tasks.dead_letters",
    "tasks.storage_breaker",
)

# Events, `inspect` replies and log lines show content ids, kinds and decisions, never texts
# or user ids, whoever sent the job (tasks/redaction.py; MODQ_EVENTS_SHOW_CONTENT=1 shows all).
# A message that cannot run (bad arguments, a body Celery cannot read) is dead-lettered, never
# fatal (tasks/dead_letters.py, docs/dead-letters.md).
task_annotations = {
    "*": {
        "Request": "tasks.redaction:RedactedRequest",
        "Strategy": "tasks.dead_letters:guarded_strategy",
    }
}
