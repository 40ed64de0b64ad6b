"""`modq`: build the model, migrate, run a worker, run the demo."""

from __future__ import annotations

import os
import sys

import click

import cli.import_cmds as _import_cmds  # noqa: F401  (adds `model import`)
import cli.registry_cmds as _registry_cmds  # noqa: F401  (adds commands to `model`)
from cli.ab_cmds import ab
from cli.api_cmds import api
from cli.api_key_cmds import api_key
from cli.dlq_cmds import dlq
from cli.flower_cmds import flower
from cli.metrics_cmds import metrics
from cli.model_cmds import model
from cli.policy_cmds import policy
from cli.review_cmds import review
from cli.webhook_cmds import webhooks
from modq.errors import ModerationError


@click.group()
def main() -> None:
    """modq: a content-moderation inference queue."""


main.add_command(model)
main.add_command(ab)
main.add_command(metrics)
main.add_command(review)
main.add_command(flower)
main.add_command(policy)
main.add_command(api_key)
main.add_command(api)
main.add_command(dlq)
main.add_command(webhooks)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--url", default=None, help="SQLAlchemy URL (default MODQ_DATABASE_URL).")
def db_upgrade(url: str | None) -> None:
    """Apply migrations up to head."""
    import migrations
    from modq.redact_urls import mask_url
    from modq.settings import get_settings

    target = url or get_settings().database_url
    migrations.upgrade(target)
    click.echo(f"migrated {mask_url(target)}")


@main.command()
@click.option("--threads", default=None, type=int, help="Task threads (jobs that share batches).")
@click.option("--loglevel", default="info")
@click.option(
    "--pool",
    type=click.Choice(["threads", "prefork"]),
    default="threads",
    help="threads: one model shared by all task threads (batching across jobs); prefork: "
    "--threads child processes, one model each.",
)
@click.option(
    "--queues",
    default="urgent,normal,bulk",
    show_default=True,
    help="Queues to consume, always drained urgent, normal, bulk (whatever the order here or "
    "add_consumer's). `--queues urgent` makes a dedicated urgent worker: it never holds bulk "
    "work, so urgent jobs never wait behind it.",
)
@click.option(
    "--nice",
    default=0,
    type=click.IntRange(0, 19),
    help="Lower this worker's CPU priority (e.g. 5 for a bulk worker sharing cores with a "
    "dedicated urgent one).",
)
@click.option(
    "--processes",
    default="1",
    show_default=True,
    help="Worker processes, each with its own model and --threads task threads; `auto`: one "
    "per CPU core on a CPU (the ceiling's 2 processes x 1 thread; more memory), one on a GPU.",
)
@click.option(
    "--metrics-port",
    default=None,
    type=click.IntRange(0, 65535),
    help="Serve /metrics, /healthz and /livez on this port (0 = off; default "
    "MODQ_WORKER_METRICS_PORT); with --processes N, process i gets this port + i.",
)
@click.option(
    "--hostname",
    "-n",
    default=None,
    metavar="NAME[@HOST]",
    help="This worker's node name (%h: this host; NAME alone is NAME@%h); with --processes N, "
    "NAME-1 ... NAME-N. Refused if a worker on this host runs under it. Default: the first "
    "free of modq@%h, modq-2@%h, ... (modq-1@%h, ... for a group), so workers started side "
    "by side never share a name and a restarted one gets its own back.",
)
@click.option(
    "--autoscale",
    default=None,
    metavar="MAX,MIN",
    help="prefork only: grow and shrink the child processes between MIN and MAX as work "
    "comes and goes. The threads pool cannot (refused at start).",
)
@click.option(
    "--task-events/--no-task-events",
    default=True,
    show_default=True,
    help="Send task events from the start (celery -E): Flower and `celery events` see every "
    "job, also those run before Flower turns events on (docs/flower.md).",
)
def worker(
    threads: int | None,
    loglevel: str,
    pool: str,
    queues: str,
    nice: int,
    processes: str,
    metrics_port: int | None,
    hostname: str | None,
    autoscale: str | None,
    task_events: bool,
) -> None:
    """Run a worker (a thin wrapper over `celery -A tasks worker`)."""
    from cli.services import WORKER_ENV_DEFAULTS, parse_queues, worker_command
    from cli.worker_group import metrics_ports, processes_for, run_group
    from cli.worker_names import NameTaken, claim_names, expanded
    from modq.settings import get_settings

    settings = get_settings()
    try:
        queue_list = parse_queues(queues)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--queues") from exc
    try:
        count = processes_for(processes, device=settings.device)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--processes") from exc
    try:
        ports = metrics_ports(
            settings.worker_metrics_port if metrics_port is None else metrics_port, count
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--metrics-port") from exc
    if autoscale and pool != "prefork":
        from tasks.signals import AUTOSCALE_REFUSED

        raise click.BadParameter(AUTOSCALE_REFUSED.format(pool=pool), param_hint="--autoscale")
    try:
        claims = claim_names(count, hostname)  # held on this host while the workers run
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--hostname") from exc
    except NameTaken as exc:
        raise click.UsageError(str(exc)) from exc
    extra = ["--autoscale", autoscale] if autoscale else []
    commands = [
        worker_command(
            threads or settings.worker_threads,
            hostname=name,
            loglevel=loglevel,
            pool=pool,
            queues=queue_list,
            task_events=task_events,
        )
        + extra
        for name in claims.names
    ]
    if nice:
        os.nice(nice)
    env = {**WORKER_ENV_DEFAULTS, **os.environ}
    envs = [{**env, "MODQ_WORKER_METRICS_PORT": str(port)} for port in ports]
    names = ", ".join(expanded(name) for name in claims.names)
    if count == 1:
        click.echo(f"modq: worker {names}", err=True)
        claims.inherit()  # the Celery process keeps the claim until it exits
        os.execve(commands[0][0], commands[0], envs[0])
    click.echo(f"modq: {count} worker processes ({names})", err=True)
    sys.exit(run_group(commands, envs, keep_fds=[[s.fileno()] for s in claims.sockets]))


@main.command()
@click.option("--threads", default=16, help="Worker task threads.")
def demo(threads: int) -> None:
    """Start what is missing (redis, worker), moderate a sample set, print the decisions."""
    from cli.demo import run_demo

    run_demo(threads)


@main.command("moderate")
@click.argument("text")
@click.option("--priority", default="normal")
@click.option("--content-id", default=None)
def moderate_text(text: str, priority: str, content_id: str | None) -> None:
    """Send one text through the queue (needs a running worker) and print the result."""
    import json
    import uuid

    from tasks import moderate

    try:
        result = moderate.delay(
            content_id=content_id or str(uuid.uuid4()), content=text, priority=priority
        ).get(timeout=60)
    except ModerationError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from exc
    click.echo(json.dumps(result, indent=2))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
