"""`modq model register|list|promote|rollback|history|eval`: the registry workflow."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cli.model_cmds import model
from modq.errors import ModerationError

if TYPE_CHECKING:
    from db.alias_history import AliasHistory
    from registry import ModelRegistry

NAME_HELP = "Registered model name (default MODQ_REGISTRY_MODEL_NAME)."


@contextmanager
def _clear_errors() -> Iterator[None]:
    """Our typed errors become a one-line message and exit status 1, not a traceback."""
    try:
        yield
    except ModerationError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from exc


def _registry() -> ModelRegistry:
    from modq.settings import get_settings
    from registry import registry_from_settings

    return registry_from_settings(get_settings())


def _history() -> AliasHistory:
    from db.alias_history import AliasHistory
    from db.session import make_engine
    from modq.settings import get_settings

    return AliasHistory(make_engine(get_settings().database_url))


def _name(name: str | None) -> str:
    from modq.settings import get_settings

    return name or get_settings().registry_model_name


def _notify_workers() -> None:
    """Wake running workers so they re-resolve their alias now (they also poll)."""
    from tasks.control import broadcast_model_refresh

    try:
        replies = broadcast_model_refresh()
    except ModerationError as exc:
        click.echo(f"workers not notified ({exc.message}); they pick the move up when they poll")
        return
    click.echo(f"notified {len(replies)} worker(s)")


@model.command("register")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--name", default=None, help=NAME_HELP)
def model_register(folder: Path, name: str | None) -> None:
    """Register a built model folder (it must load and score first)."""
    from lifecycle import register_model_folder

    with _clear_errors():
        entry = register_model_folder(folder, name=_name(name), registry=_registry())
    click.echo(f"{entry.name} v{entry.version} (digest {entry.digest})")


@model.command("list")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def model_list(name: str | None, as_json: bool) -> None:
    """Versions of a registered model, with their aliases, precision and ROC-AUC."""
    registry = _registry()
    with _clear_errors():
        entries = registry.versions(_name(name))
    if as_json:
        click.echo(json.dumps([_as_dict(e) for e in entries], indent=2))
        return
    click.echo(f"{'version':>7}  {'aliases':<22} {'family':<28} {'digest':<12} {'prec':<5} created")
    for e in entries:
        click.echo(
            f"{e.version:>7}  {','.join(e.aliases) or '-':<22} "
            f"{e.tags.get('modq.family', '?'):<28} {e.digest:<12} "
            f"{e.tags.get('modq.precision', '?'):<5} {e.created_at}"
        )


@model.command("promote")
@click.argument("name")
@click.argument("version")
@click.option("--alias", default="production", show_default=True)
@click.option("--reason", default="", help="Why (kept in the alias history).")
@click.option("--actor", default=None, help="Who (default MODQ_ACTOR or the login name).")
@click.option(
    "--force",
    is_flag=True,
    help="Promote a version no policy was calibrated for (needs --reason; recorded).",
)
def model_promote(
    name: str, version: str, alias: str, reason: str, actor: str | None, force: bool
) -> None:
    """Point NAME@ALIAS at VERSION; running workers swap to it between batches. A version no
    policy in the policy folder was calibrated for (`modq policy calibrate`) is refused
    unless --force --reason."""
    from lifecycle import promote
    from modq.settings import get_settings

    with _clear_errors():
        move = promote(
            _registry(),
            _history(),
            name,
            version,
            alias=alias,
            actor=actor,
            reason=reason,
            policies_dir=Path(get_settings().policy_path).parent,
            force=force,
        )
    click.echo(f"{name}@{alias}: v{move.from_version or '-'} → v{move.to_version}")
    _notify_workers()


@model.command("rollback")
@click.argument("name")
@click.option("--alias", default="production", show_default=True)
@click.option("--reason", default="", help="Why (kept in the alias history).")
@click.option("--actor", default=None, help="Who (default MODQ_ACTOR or the login name).")
def model_rollback(name: str, alias: str, reason: str, actor: str | None) -> None:
    """Point NAME@ALIAS back at the version it held before the current one."""
    from lifecycle import rollback

    with _clear_errors():
        move = rollback(_registry(), _history(), name, alias=alias, actor=actor, reason=reason)
    click.echo(f"{name}@{alias}: v{move.from_version} → v{move.to_version} (rollback)")
    _notify_workers()


@model.command("history")
@click.argument("name")
@click.option("--alias", default=None, help="Only this alias.")
def model_history(name: str, alias: str | None) -> None:
    """Every alias move of NAME: when, who, from, to, why."""
    with _clear_errors():
        moves = _history().moves(name, alias)
    if not moves:
        click.echo(f"no alias moves recorded for {name}")
        return
    for m in moves:
        click.echo(
            f"{m.moved_at.isoformat(timespec='seconds')}  {m.alias:<12} {m.action:<8} "
            f"v{m.from_version or '-'} → v{m.to_version}  by {m.actor}"
            + (f"  ({m.reason})" if m.reason else "")
        )


@model.command("eval")
@click.argument("name")
@click.argument("version")
def model_eval(name: str, version: str) -> None:
    """Held-out metrics of NAME VERSION, printed and logged to MLflow."""
    from modq.settings import get_settings
    from policy import load_policy
    from training.evaluate import evaluate_folder

    registry = _registry()
    with _clear_errors():
        entry = registry.get(name, version)
        metrics = evaluate_folder(
            registry.local_folder(entry), load_policy(get_settings().policy_path)
        )
    flat = {
        f"{key}.{category}": float(value)
        for category, entry_metrics in metrics.items()
        if isinstance(entry_metrics, dict)
        for key, value in entry_metrics.items()
        if key in ("roc_auc", "f1_at_flag", "f1_at_remove") and isinstance(value, int | float)
    }
    run_id = registry.log_evaluation(entry, flat)
    for key, value in sorted(flat.items()):
        click.echo(f"{key:<32} {value:.4f}")
    click.echo(f"logged to MLflow run {run_id}")


def _as_dict(entry: object) -> dict[str, object]:
    from dataclasses import asdict, is_dataclass

    return asdict(entry) if is_dataclass(entry) and not isinstance(entry, type) else {}
