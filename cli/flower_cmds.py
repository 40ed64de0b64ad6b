"""`modq flower`: Flower on modq's queues, with authentication required (docs/flower.md)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

import click

AUTH_ENV = "MODQ_FLOWER_BASIC_AUTH"
DEFAULT_ADDRESS = "127.0.0.1"  # this host only: put a TLS proxy in front to reach it from afar
DEFAULT_PORT = 5555
FLOWER_APP = "cli.flower_app"  # modq's Celery app, reading no results
FLOWER_CONFIG = Path(__file__).with_name("flower_config.py")  # format_task
# Flower reads any FLOWER_<OPTION> from the environment; these would weaken what we set.
DROPPED_ENV = ("FLOWER_BASIC_AUTH", "FLOWER_UNAUTHENTICATED_API", "FLOWER_FORMAT_TASK")


def parse_basic_auth(value: str) -> list[str]:
    """``user:password[,user2:password2…]`` as Flower's list of ``user:password`` entries;
    ``ValueError`` (saying why, never echoing a password) if any entry is incomplete."""
    entries = [entry.strip() for entry in value.split(",")] if value.strip() else []
    if not entries:
        raise ValueError(f"{AUTH_ENV} is not set: Flower starts only with a login")
    for number, entry in enumerate(entries, 1):
        user, colon, password = entry.partition(":")
        if not colon or not user or not password:
            raise ValueError(
                f"{AUTH_ENV} entry {number} is not user:password (a comma separates entries)"
            )
    return entries


def flower_command(address: str, port: int) -> list[str]:
    """The Flower process: ``celery -A cli.flower_app flower`` with modq's options."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        FLOWER_APP,
        "flower",
        f"--address={address}",
        f"--port={port}",
        f"--conf={FLOWER_CONFIG}",
    ]


def flower_env(environ: Mapping[str, str], entries: list[str]) -> dict[str, str]:
    """Flower's environment: the login passed as ``FLOWER_BASIC_AUTH`` (never on the command
    line, which every user of the host can read), options that would weaken it dropped."""
    env = {name: value for name, value in environ.items() if name not in DROPPED_ENV}
    env["FLOWER_BASIC_AUTH"] = ",".join(entries)
    return env


@click.command()
@click.option(
    "--address",
    default=DEFAULT_ADDRESS,
    show_default=True,
    help="Address to listen on; the default serves this host only.",
)
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(1, 65535))
def flower(address: str, port: int) -> None:
    """Run Flower on modq's queues; the login comes from MODQ_FLOWER_BASIC_AUTH=user:password.

    Task arguments and results are redacted (content ids, kinds and decisions are shown; texts
    and user ids are not) unless MODQ_EVENTS_SHOW_CONTENT=1. /metrics and /healthcheck answer
    without a login (Flower's own rule): they carry task names and counts, no content."""
    try:
        entries = parse_basic_auth(os.environ.get(AUTH_ENV, ""))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    users = ", ".join(entry.partition(":")[0] for entry in entries)
    click.echo(f"modq: Flower on http://{address}:{port}/ (login: {users})", err=True)
    command = flower_command(address, port)
    os.execve(command[0], command, flower_env(os.environ, entries))
