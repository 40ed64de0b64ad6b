"""`modq policy calibrate|show`: thresholds calibrated per model version, as new policy files."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from modq.errors import ModerationError


@click.group()
def policy() -> None:
    """Versioned thresholds: calibrate them for a model version, show them."""


def _model_folder(model: str) -> Path:
    """A model folder from a path, ``current``, or ``models:/NAME/VERSION|@ALIAS``."""
    from modq.settings import get_settings

    if model == "current":
        return get_settings().model_dir.resolve()
    if model.startswith("models:/"):
        from registry import parse_model_uri, registry_from_settings

        registry = registry_from_settings(get_settings())
        return registry.local_folder(registry.resolve(parse_model_uri(model)))
    folder = Path(model)
    if not folder.is_dir():
        raise click.BadParameter(f"{model} is not a model folder, `current` or models:/… URI")
    return folder.resolve()


@policy.command("calibrate")
@click.argument("model", default="current")
@click.option("--flag-precision", type=click.FloatRange(0.01, 1.0), default=0.80, show_default=True)
@click.option(
    "--remove-precision", type=click.FloatRange(0.01, 1.0), default=0.95, show_default=True
)
@click.option(
    "--z",
    type=click.FloatRange(0.0, 4.0),
    default=1.0,
    show_default=True,
    help="A cut is kept only if its precision's lower Wilson bound (z standard errors) reaches "
    "the target.",
)
@click.option("--version", "version", default=None, help="New policy version (default: next vN).")
@click.option(
    "--base",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Policy whose thresholds thin or unsupported categories keep (default: the configured "
    "MODQ_POLICY_PATH); its [user_history] rule is carried over.",
)
@click.option(
    "--policies-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where policy versions live (default: MODQ_POLICY_PATH's folder).",
)
def policy_calibrate(
    model: str,
    flag_precision: float,
    remove_precision: float,
    z: float,
    version: str | None,
    base: Path | None,
    policies_dir: Path | None,
) -> None:
    """Set each category's flag and remove thresholds on MODEL's validation scores to the target
    precisions and write them as a new policy version (MODEL: a folder, `current` or a
    models:/ URI). Thin categories never go below the base policy's thresholds."""
    from gpu_worker.manifest import ModelManifest
    from modq.settings import get_settings
    from policy import load_policy
    from policy.model import Calibration
    from policy.writer import calibrated_policy_text, next_version, write_policy
    from training.finish import calibrate_scores
    from training.scores import load_scores

    settings = get_settings()
    try:
        folder = _model_folder(model)
        manifest = ModelManifest.read(folder)
        base_policy = load_policy(base or settings.policy_path)
        target_dir = policies_dir or Path(settings.policy_path).parent
        new_version = version or next_version(target_dir)
        calibrated = calibrate_scores(
            load_scores(folder, "validation"),
            base_policy,
            flag_target=flag_precision,
            remove_target=remove_precision,
            z=z,
        )
        calibration = Calibration(
            model_name=manifest.name,
            model_version=manifest.version,
            flag_precision_target=flag_precision,
            remove_precision_target=remove_precision,
            base_policy=base_policy.version,
            calibrated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        text = calibrated_policy_text(
            new_version,
            calibrated,
            base_policy,
            calibration,
            z=z,
            header_lead="thresholds calibrated by `modq policy calibrate`",
        )
        path = write_policy(target_dir, new_version, text)
    except ModerationError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from exc
    click.echo(f"wrote {path} (policy {new_version} for {manifest.name} {manifest.version})")
    for category, k in calibrated.items():
        click.echo(
            f"  {category:<12} flag {k.flag.threshold:.3f} (P {k.flag.precision:.2f} R "
            f"{k.flag.recall:.2f})  remove {k.remove.threshold:.3f} (P {k.remove.precision:.2f} "
            f"R {k.remove.recall:.2f}){'  thin' if k.thin else ''}"
        )
