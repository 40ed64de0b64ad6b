"""`modq model build|quantize|show`: build the default model and its variants, read its card."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from modq.errors import ModerationError

if TYPE_CHECKING:
    from policy import Policy


@click.group()
def model() -> None:
    """Build and inspect models."""


def _models_root() -> Path:
    from modq.settings import get_settings

    return get_settings().model_dir.parent


REGISTER_OPTION = click.option(
    "--register/--no-register",
    default=True,
    show_default=True,
    help="Register every folder built in the model registry (MODQ_MLFLOW_URI, name "
    "MODQ_REGISTRY_MODEL_NAME), with its metrics, provenance and card.",
)
MODELS_DIR_OPTION = click.option(
    "--models-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where model folders go (default: parent of MODQ_MODEL_DIR).",
)


OUTDATED_FAMILY = "modq-minilm-heads"  # the previous default's recipe: --if-missing rebuilds it


@model.command("build")
@MODELS_DIR_OPTION
@click.option("--if-missing", is_flag=True, help="Do nothing if the current model exists.")
@click.option(
    "--fine-tune",
    "fine_tune",
    is_flag=True,
    help="Then fine-tune MiniLM end to end with the heads (CPU, ~8-15 min an epoch) and make "
    "the fine-tuned model current.",
)
@click.option("--epochs", type=click.IntRange(min=1), default=2, show_default=True)
@click.option(
    "--max-steps",
    type=click.IntRange(min=1),
    default=None,
    help="Stop fine-tuning after this many batches (smoke runs).",
)
@click.option(
    "--int8/--no-int8",
    default=True,
    show_default=True,
    help="Then quantize the model just built to int8; it becomes current (the CPU default) "
    "only if no category's validation ROC-AUC drops by more than 0.005.",
)
@click.option(
    "--baselines",
    is_flag=True,
    help="Also run the offline baselines (TF-IDF + LR, alt-profanity-check; ~20 s CPU) on the "
    "same held-out rows and put them in metrics.json and the model card.",
)
@REGISTER_OPTION
def model_build(
    models_dir: Path | None,
    if_missing: bool,
    fine_tune: bool,
    epochs: int,
    max_steps: int | None,
    int8: bool,
    baselines: bool,
    register: bool,
) -> None:
    """Build the default model from packaged parts (needs the `build` extra)."""
    from gpu_worker.manifest import ModelManifest
    from modq.settings import get_settings
    from policy import load_policy

    settings = get_settings()
    root = models_dir or _models_root()
    if if_missing:
        try:
            found = ModelManifest.read(root / "current")
        except ModerationError:
            found = None
        if found is not None and not found.name.startswith(OUTDATED_FAMILY):
            click.echo(f"model present: {found.name} {found.version}")
            _ensure_policies(root / "current", load_policy(settings.policy_path))
            return
        if found is not None:  # a default model of an older build recipe: build the new one
            click.echo(f"model present: {found.name} {found.version} (older recipe): rebuilding")
    from training.build import build_model, evaluate_fp32_folder

    policy = load_policy(settings.policy_path)
    folder = build_model(root, policy, evaluate=not int8 or fine_tune)
    built = [folder]
    try:
        if fine_tune:
            from training.artifacts import point_current
            from training.finetune import FineTuneConfig
            from training.finetune_build import build_fine_tuned

            config = FineTuneConfig(epochs=epochs, max_steps=max_steps)
            folder = build_fine_tuned(root, policy, folder, config)
            point_current(root, folder)
            built.append(folder)
        if int8:
            from training.quantize import BUILD_SPEED_TEXTS

            fp32_folder = folder
            folder = _quantize(folder, root, BUILD_SPEED_TEXTS)
            built.append(folder)
            if not ModelManifest.read(folder).extra.get("cpu_default") and not fine_tune:
                evaluate_fp32_folder(fp32_folder, policy)  # fp32 stays the served model
                folder = fp32_folder
        if baselines:
            from training.compare import compare_models

            compare_models(built, policy, with_baselines=baselines)
        if register:
            _register(built)
    except ModerationError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from exc
    _summary(folder)


def _ensure_policies(current: Path, base: Policy) -> None:
    """A model built before folders carried their policy gets one (and so does the folder its
    int8 copy came from): calibrated on the validation scores it holds, no rebuild."""
    from training.finish import ensure_carried_policies

    try:
        for written in ensure_carried_policies(current, base):
            click.echo(f"wrote {written} (the policy calibrated for this model)")
    except ModerationError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from exc


def _summary(folder: Path) -> None:
    """What was built, in a few lines: the card stays in its file (`modq model show`)."""
    import json

    from gpu_worker.manifest import ModelManifest
    from policy.carried import CARRIED_POLICY_FILE, carried_policy

    manifest = ModelManifest.read(folder)
    click.echo(f"model: {manifest.name} {manifest.version} ({folder})")
    metrics_file = folder / "metrics.json"
    if metrics_file.exists():
        metrics = json.loads(metrics_file.read_text())
        aucs = [
            f"{category} {entry['roc_auc']:.3f}"
            for category, entry in metrics.items()
            if isinstance(entry, dict) and isinstance(entry.get("roc_auc"), int | float)
        ]
        if aucs:
            click.echo(f"ROC-AUC on held-out rows: {', '.join(aucs)}")
    policy = carried_policy(folder)
    if policy is not None:
        click.echo(f"policy: {policy.version} ({folder / CARRIED_POLICY_FILE}), calibrated for it")
    click.echo(f"model card: {folder / 'MODEL_CARD.md'} (`modq model show` prints it)")


def _register(folders: list[Path]) -> None:
    from lifecycle import register_model_folder

    for folder in folders:
        entry = register_model_folder(folder)
        click.echo(f"registered {entry.name} v{entry.version} ({entry.digest})", err=True)


def _quantize(fp32_folder: Path, root: Path, speed_texts: int | None = None) -> Path:
    from gpu_worker.manifest import ModelManifest
    from training.artifacts import point_current
    from training.quantize import SPEED_TEXTS, quantize_model

    folder = quantize_model(fp32_folder, root, speed_texts=speed_texts or SPEED_TEXTS)
    if ModelManifest.read(folder).extra.get("cpu_default"):
        point_current(root, folder)
        click.echo(f"int8 is the CPU default: current → {folder}", err=True)
    else:
        click.echo(
            f"int8 lost more than 0.005 ROC-AUC somewhere: current stays {fp32_folder}", err=True
        )
    return folder


@model.command("quantize")
@click.argument(
    "fp32_folder", required=False, type=click.Path(path_type=Path, exists=True, file_okay=False)
)
@MODELS_DIR_OPTION
@click.option(
    "--speed-texts",
    type=click.IntRange(min=1),
    default=None,
    help="Held-out texts timed for texts/s (default 1,000).",
)
@REGISTER_OPTION
def model_quantize(
    fp32_folder: Path | None, models_dir: Path | None, speed_texts: int | None, register: bool
) -> None:
    """Quantize an fp32 model folder (default: the current model) to int8, measured beside it;
    the int8 model becomes current only if no category's ROC-AUC drops by more than 0.005."""
    root = models_dir or _models_root()
    source = (fp32_folder or root / "current").resolve()
    try:
        folder = _quantize(source, root, speed_texts)
        if register:
            _register([folder])
    except ModerationError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from exc
    _summary(folder)


@model.command("show")
@click.option(
    "--run-probes",
    is_flag=True,
    help="Also judge the probe sets (issue 21: long texts, disguised abuse, noise, identity "
    "mentions, hate, other languages, e-mail, insults) now with this model under the policy "
    "it carries, and print their tables (about a minute on 2 cores; nothing is written).",
)
def model_show(run_probes: bool) -> None:
    """Print the current model's card: per category the data behind it, ROC-AUC and PR-AUC
    with 95% intervals, precision/recall at the calibrated thresholds, the issue's targets,
    the targets on real content (probe sets) with their intervals, the evasion set and real
    errors of weak categories."""
    import json

    from modq.settings import get_settings
    from policy.carried import CARRIED_POLICY_FILE, carried_policy
    from training.probes.report import PROBES_HEADING, probe_sections

    folder = get_settings().model_dir
    card = folder / "MODEL_CARD.md"
    if not card.exists():
        raise click.ClickException(f"no model at {card.parent}; run `modq model build`")
    text = card.read_text()
    click.echo(text)
    policy = carried_policy(card.parent)
    targets_file = folder / "targets.json"
    probes = json.loads(targets_file.read_text()).get("probes") if targets_file.exists() else None
    if run_probes:
        probes = _probes_now(folder.resolve(), policy)
    if probes and (run_probes or PROBES_HEADING not in text):
        click.echo("\n".join(probe_sections(probes)))
    elif not probes:
        click.echo(
            "No probe sets measured for this folder (built before them): "
            "`modq model show --run-probes` judges them now."
        )
    if policy is not None:
        click.echo(f"Policy carried by this folder: {policy.version} ({CARRIED_POLICY_FILE}).")


def _probes_now(folder: Path, policy: Policy | None) -> dict[str, object]:
    """The probe sets judged now by ``folder``'s model (its carried policy, else the
    configured one)."""
    from modq.settings import get_settings
    from policy import load_policy
    from training.evaluate import held_out_examples
    from training.judge import folder_judge
    from training.probes import run_probes

    chosen = policy or load_policy(get_settings().policy_path)
    return run_probes(folder_judge(folder, chosen), held_out_examples())
