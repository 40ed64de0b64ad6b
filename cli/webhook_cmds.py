"""`modq webhooks`: the consumer of webhook deliveries (the ``webhooks`` queue).

Deliveries never run in a worker that moderates: a receiver that hangs would hold its task
threads. This is a Celery worker on the ``webhooks`` queue alone, with threads of its own and
no model (``tasks.webhooks``: short timeouts, bounded concurrency per receiver host, backoff).
"""

from __future__ import annotations

import os

import click

WEBHOOKS_BASE = "webhooks"  # default node names: webhooks@%h, webhooks-2@%h...


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
    "-n",
    default=None,
    help="Celery node name (%h: this host), refused if one on this host holds it; default the "
    "first free of webhooks@%h, webhooks-2@%h... (stable across restarts).",
)
@click.option("--loglevel", default="info", show_default=True)
def webhooks(threads: int, hostname: str | None, loglevel: str) -> None:
    """Deliver webhooks (jobs sent with a callback_url): run one or more beside the workers."""
    from cli.services import WORKER_ENV_DEFAULTS, worker_command
    from cli.worker_names import NameTaken, claim_names, expanded
    from modq.contract import WEBHOOK_QUEUE

    try:  # the node name is claimed on this host as `modq worker`'s are (cli/worker_names.py)
        claims = claim_names(1, hostname, base=WEBHOOKS_BASE)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--hostname") from exc
    except NameTaken as exc:
        raise click.UsageError(str(exc)) from exc
    (name,) = claims.names
    command = worker_command(threads, hostname=name, loglevel=loglevel, queues=WEBHOOK_QUEUE)
    click.echo(f"modq: webhooks {expanded(name)}", err=True)
    claims.inherit()  # the Celery process keeps the claim until it exits
    os.execve(command[0], command, {**WORKER_ENV_DEFAULTS, **os.environ})
