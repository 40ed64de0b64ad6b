"""`modq model build|show`: build the default model and read its card."""

from __future__ import annotations

from pathlib import Path

import click

from modq.errors import ModerationError


@click.group()
def model() -> None:
    """Build and inspect models."""


def _models_root() -> Path:
    from modq.settings import get_settings

    return get_settings().model_dir.parent


@model.command("build")
@click.option(
    "--models-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where model folders go (default: parent of MODQ_MODEL_DIR).",
)
@click.option("--if-missing", is_flag=True, help="Do nothing if the current model exists.")
def model_build(models_dir: Path | None, if_missing: bool) -> None:
    """Build the default model from packaged parts (needs the `build` extra)."""
    from gpu_worker.manifest import ModelManifest
    from modq.settings import get_settings
    from policy import load_policy

    settings = get_settings()
    root = models_dir or _models_root()
    if if_missing:
        try:
            found = ModelManifest.read(root / "current")
            click.echo(f"model present: {found.name} {found.version}")
            return
        except ModerationError:
            pass
    from training.build import build_model

    folder = build_model(root, load_policy(settings.policy_path))
    click.echo((folder / "MODEL_CARD.md").read_text())


@model.command("show")
def model_show() -> None:
    """Print the current model's card."""
    from modq.settings import get_settings

    card = get_settings().model_dir / "MODEL_CARD.md"
    if not card.exists():
        raise click.ClickException(f"no model at {card.parent}; run `modq model build`")
    click.echo(card.read_text())
