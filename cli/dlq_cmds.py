"""`modq dlq list|show|retry|purge`: the dead-letter queue (docs/dead-letters.md).

``list`` and ``show`` never print a message's content unless asked (``show --content``).
``retry`` sends an entry again through modq's producer (the same checks, routing by priority
and admission as an app's call); an entry that still does not decode or validate stays parked,
with the reason in its ``retry_error``.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
from datetime import UTC, datetime
from typing import Any

import click

from modq.broker.dead_letters import EXHAUSTED, DeadLetter, DeadLetters, read_raw
from modq.errors import ModerationError, PoisonMessage

LIST_COLUMNS = ("id", "kind", "reason", "task", "task_id", "queue", "attempts", "parked")


@click.group()
def dlq() -> None:
    """The dead-letter queue: poison messages and jobs that ran out of retries."""


def _store() -> DeadLetters:
    from modq.broker.dead_letters import get_dead_letters

    return get_dead_letters()


def _when(at_s: float) -> str:
    return datetime.fromtimestamp(at_s, UTC).strftime("%Y-%m-%d %H:%M:%S")


@dlq.command("list")
@click.option(
    "--limit", default=100, show_default=True, help="Show at most this many, oldest first."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def dlq_list(limit: int, as_json: bool) -> None:
    """List parked entries (no content)."""
    store = _store()
    entries = list(store.entries(limit=limit))
    if as_json:
        for entry in entries:
            click.echo(json.dumps(entry.summary()))
        return
    click.echo(f"{store.size()} dead letter(s)")
    if not entries:
        return
    rows = [
        [
            entry.id,
            entry.kind,
            entry.reason,
            entry.task or "-",
            entry.task_id or "-",
            entry.queue or "-",
            str(entry.attempts),
            _when(entry.parked_at_s),
        ]
        for entry in entries
    ]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(LIST_COLUMNS)]
    for row in [list(LIST_COLUMNS), *rows]:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


@dlq.command("show")
@click.argument("entry_id")
@click.option("--content", is_flag=True, help="Also print the original message (it may hold text).")
def dlq_show(entry_id: str, content: bool) -> None:
    """One entry as JSON: reason, attempts, first and last error, timestamps."""
    entry = _get(entry_id)
    shown: dict[str, Any] = entry.summary()
    if content:
        raw = entry.raw()
        shown["message"] = raw.decode("utf-8", "backslashreplace")
        if entry.kind != EXHAUSTED:
            shown["body"] = _body_text(raw)  # what the base64 hides
    click.echo(json.dumps(shown, indent=2))


@dlq.command("retry")
@click.argument("entry_id", required=False)
@click.option("--all", "every", is_flag=True, help="Retry every entry.")
def dlq_retry(entry_id: str | None, every: bool) -> None:
    """Send entries again through the producer; exit 1 if any stays parked."""
    store = _store()
    entries = _chosen(store, entry_id, every)
    failed = 0
    for entry in entries:
        try:
            task_id = resend(entry)
        except ModerationError as exc:
            failed += 1
            entry.retry_error = f"{exc.code}: {exc.message}"
            store.update(entry)
            click.echo(f"{entry.id}: stays parked ({entry.retry_error})", err=True)
            continue
        store.remove(entry.id)
        click.echo(f"{entry.id}: sent again as {entry.task} {task_id}")
    click.echo(f"{len(entries) - failed} sent again, {failed} still parked", err=bool(failed))
    if failed:
        sys.exit(1)


@dlq.command("purge")
@click.argument("entry_id", required=False)
@click.option("--all", "every", is_flag=True, help="Remove every entry.")
def dlq_purge(entry_id: str | None, every: bool) -> None:
    """Remove one entry, or all of them (``--all``)."""
    store = _store()
    if every and entry_id is None:
        click.echo(f"purged {store.purge()} dead letter(s)")
        return
    entry = _get(_one(entry_id, every))
    store.remove(entry.id)
    click.echo(f"purged {entry.id}")


def _one(entry_id: str | None, every: bool) -> str:
    if entry_id is None or every:
        raise click.UsageError("give one ID or --all")
    return entry_id


def _chosen(store: DeadLetters, entry_id: str | None, every: bool) -> list[DeadLetter]:
    if every and entry_id is None:
        return list(store.entries())
    return [_get(_one(entry_id, every))]


def _get(entry_id: str) -> DeadLetter:
    try:
        return _store().get(entry_id)
    except ModerationError as exc:
        raise click.ClickException(exc.message) from exc


def _body_text(raw: bytes) -> str | None:
    """A kombu message's body as text (base64 decoded), if it has one that decodes."""
    try:
        envelope = json.loads(raw)
        body = envelope["body"]
        if envelope["properties"]["body_encoding"] == "base64":
            body = base64.b64decode(body).decode("utf-8", "backslashreplace")
    except (ValueError, TypeError, KeyError, binascii.Error):
        return None
    return body if isinstance(body, str) else json.dumps(body)


def resend(entry: DeadLetter) -> str:
    """Send ``entry``'s job again through modq's producer, under its old task id if it had
    one; returns the task id. ``PoisonMessage`` if it cannot be read back as a modq job, the
    producer's own typed error if it does not validate (then nothing is sent)."""
    from modq.client import moderate, moderate_many, record_review

    producers = {task.name: task for task in (moderate, moderate_many, record_review)}
    if entry.kind == EXHAUSTED:
        job = json.loads(entry.message)
        name, args, kwargs = job.get("task"), job.get("args") or [], job.get("kwargs") or {}
    else:
        raw = read_raw(entry.raw())
        if raw.problem is not None:
            raise PoisonMessage(f"still cannot be read: {raw.problem}")
        name, args, kwargs = raw.task, raw.args or [], raw.kwargs or {}
    producer = producers.get(name or "")
    if producer is None:
        raise PoisonMessage(f"not a job modq's producer sends (task {name!r})")
    kwargs = {k: v for k, v in kwargs.items() if k != "enqueued_at_s"}  # stamped anew
    options = {"task_id": entry.task_id} if entry.task_id else {}
    try:
        result = producer.apply_async(args, kwargs, **options)
    except (TypeError, ValueError) as exc:  # a shape the producer's checks did not type
        raise PoisonMessage(f"does not fit {name}: {exc}") from exc
    return str(result.id)
