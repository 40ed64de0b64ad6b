"""Celery keys only; every value comes from ``modq.settings`` (environment, prefix MODQ_)."""

from kombu import Queue

from modq.schemas import Priority
from modq.settings import get_settings

_settings = get_settings()

broker_url = _settings.effective_broker_url
result_backend = _settings.effective_result_backend_url
# On Redis, a message leaves its queue and enters `unacked` in one step (a killed worker loses
# nothing; stock kombu pops first and records later): see tasks/broker_transport.py.
if broker_url.partition("://")[0] == "redis":
    broker_transport = "tasks.broker_transport:Transport"

# JSON only: never pickle.
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
result_accept_content = ["json"]

# A job is acknowledged only after its result is stored; a lost worker means redelivery.
task_acks_late = True
task_reject_on_worker_lost = True
worker_cancel_long_running_tasks_on_connection_loss = True

# Queues drained strictly urgent -> normal -> bulk: on Redis, 'priority' follows the order of
# the worker's -Q list (never 'sorted', which is alphabetical: bulk first).
task_queues = tuple(Queue(p.value, routing_key=p.value) for p in Priority)
task_default_queue = Priority.NORMAL.value
task_create_missing_queues = False
broker_transport_options = {
    "queue_order_strategy": "priority",
    "visibility_timeout": _settings.visibility_timeout_s,
    # sweep every interval (throttle 1), not every 10th: a lost worker's jobs come back soon
    # after their visibility timeout instead of up to 10 intervals later
    "unacked_restore_interval": _settings.unacked_restore_interval_s,
    "unacked_restore_throttle": 1,
}
result_backend_transport_options = {"retry_policy": {"timeout": 5.0}}
worker_prefetch_multiplier = _settings.prefetch_multiplier

# Threads share the process's one model and batcher; several processes = several workers.
worker_pool = "threads"
worker_concurrency = _settings.worker_threads

result_expires = _settings.result_expires_s
result_extended = False
task_track_started = False
broker_connection_retry_on_startup = True
# A producer whose broker is down gets BrokerUnavailable after ~2 s, not an endless hang.
broker_connection_timeout = 2.0
task_publish_retry_policy = {
    "max_retries": 2,
    "interval_start": 0.0,
    "interval_step": 0.5,
    "interval_max": 1.0,
}
worker_hijack_root_logger = False

# Modules a worker imports at start: the wait-time recorder hooks task_prerun, the heap trimmer
# task_postrun (producers never import them).
imports = ("tasks.wait_time", "tasks.heap")
