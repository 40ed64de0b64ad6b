"""`modq webhooks`: the consumer of webhook deliveries (the ``webhooks`` queue).

Deliveries never run in a worker that moderates: a receiver that hangs would hold its task
threads. This is a Celery worker on the ``webhooks`` queue alone, with threads of its own and
no model (``tasks.webhooks``: short timeouts, bounded concurrency per receiver host, backoff).
"""

from __future__ import annotations

import os

import click


@click.command("webhooks")
@click.option(
    "--threads",
    default=16,
    show_default=True,
    type=click.IntRange(1, 512),
    help="Deliveries in progress at once (at most MODQ_WEBHOOK_HOST_CONCURRENCY per host).",
)
@click.option(
    "--hostname",
    default=None,
    help="Celery node name (%h: this host); default webhooks-<pid>@%h, so two on one host "
    "never clash.",
)
@click.option("--loglevel", default="info", show_default=True)
def webhooks(threads: int, hostname: str | None, loglevel: str) -> None:
    """Deliver webhooks (jobs sent with a callback_url): run one or more beside the workers."""
    from cli.services import WORKER_ENV_DEFAULTS, worker_command
    from modq.contract import WEBHOOK_QUEUE

    name = hostname or f"webhooks-{os.getpid()}@%h"  # execve keeps the pid
    command = worker_command(threads, hostname=name, loglevel=loglevel, queues=WEBHOOK_QUEUE)
    os.execve(command[0], command, {**WORKER_ENV_DEFAULTS, **os.environ})
