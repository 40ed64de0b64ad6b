"""`modq api-key create|list|revoke`: the keys of the HTTP front (stored hashed, with scopes)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

from cli.registry_cmds import _clear_errors
from db.api_keys import PRIORITIES, ApiKeyRecord, ApiKeyRepository


@contextmanager
def _repository() -> Iterator[ApiKeyRepository]:
    from db.session import make_engine
    from modq.settings import get_settings

    engine = make_engine(get_settings().database_url)
    try:
        yield ApiKeyRepository(engine)
    finally:
        engine.dispose()


def _scopes(record: ApiKeyRecord) -> str:
    shown = [p for p in PRIORITIES if p in record.priorities]
    if record.may_review:
        shown.append("reviews")
    return ",".join(shown) or "-"


@click.group("api-key")
def api_key() -> None:
    """API keys of the HTTP front: each carries the priorities it may use and the review scope."""


@api_key.command("create")
@click.option("--name", required=True, help="Who or what the key is for (shown by list).")
@click.option(
    "--priorities",
    default="normal",
    show_default=True,
    help="Comma-separated priorities the key may use: urgent, normal, bulk.",
)
@click.option("--reviews/--no-reviews", default=False, help="May post reviews (/v1/reviews).")
@click.option(
    "--rate-per-min",
    type=float,
    default=None,
    help="This key's requests per minute (0 = unlimited); default MODQ_RATE_LIMIT_PER_MIN.",
)
def create(name: str, priorities: str, reviews: bool, rate_per_min: float | None) -> None:
    """Create a key and print it once: modq keeps only its hash."""
    with _clear_errors(), _repository() as repository:
        record, key = repository.create(
            name, priorities.split(","), may_review=reviews, rate_limit_per_min=rate_per_min
        )
    click.echo(key)
    click.echo(
        f"created key {record.key_id} ({record.name}; scopes {_scopes(record)}). "
        "Store it now: it cannot be shown again.",
        err=True,
    )


@api_key.command("list")
def list_keys() -> None:
    """Every key: id, name, scopes, status, dates. Never a secret."""
    with _clear_errors(), _repository() as repository:
        records = repository.list()
    click.echo(
        f"{'ID':<14} {'NAME':<24} {'SCOPES':<28} {'RATE/MIN':<9} {'STATUS':<8} "
        f"{'CREATED':<20} LAST USED"
    )
    for record in records:
        status = "active" if record.active else "revoked"
        used = record.last_used_at.strftime("%Y-%m-%d %H:%M:%S") if record.last_used_at else "-"
        rate = "default" if record.rate_limit_per_min is None else f"{record.rate_limit_per_min:g}"
        click.echo(
            f"{record.key_id:<14} {record.name[:24]:<24} {_scopes(record):<28} {rate:<9} "
            f"{status:<8} {record.created_at:%Y-%m-%d %H:%M:%S}  {used}"
        )


@api_key.command("revoke")
@click.argument("key_id")
def revoke(key_id: str) -> None:
    """Revoke a key by its id; API processes refuse it within MODQ_API_KEY_CACHE_S."""
    with _clear_errors(), _repository() as repository:
        revoked = repository.revoke(key_id)
    if not revoked:
        raise click.ClickException(f"no active API key with id {key_id!r}")
    click.echo(f"revoked {key_id}")
