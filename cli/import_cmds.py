"""`modq model import`: bring your own Hugging Face checkpoint or ONNX file."""

from __future__ import annotations

from pathlib import Path

import click

from cli.model_cmds import model
from modq.errors import ModerationError


@model.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--name", required=True, help="Model name (folder and registry name).")
@click.option(
    "--map",
    "pairs",
    multiple=True,
    metavar="LABEL=CATEGORY",
    help="Map a model label to a canonical category (repeat; several labels may share one).",
)
@click.option("--ignore", multiple=True, metavar="LABEL", help="A label to drop (repeat).")
@click.option(
    "--activation",
    type=click.Choice(["sigmoid", "softmax", "none"]),
    default=None,
    help="Logits → scores. Default: from the checkpoint's problem_type (HF), sigmoid (ONNX).",
)
@click.option("--max-length", type=int, default=None, help="Truncate texts to N tokens.")
@click.option(
    "--tokenizer",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="tokenizer.json (ONNX files only).",
)
@click.option("--labels", default=None, help="The ONNX output columns' labels: a,b,c.")
@click.option("--output-name", default=None, help="The ONNX output with the logits.")
@click.option(
    "--models-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where model folders go (default: parent of MODQ_MODEL_DIR).",
)
@click.option(
    "--torch-only",
    is_flag=True,
    help="Checkpoints only: skip the ONNX export (for models that do not export); the folder "
    "then serves with MODQ_BACKEND=torch only.",
)
@click.option("--no-register", is_flag=True, help="Build the folder only; do not register it.")
def model_import(
    path: Path,
    name: str,
    pairs: tuple[str, ...],
    ignore: tuple[str, ...],
    activation: str | None,
    max_length: int | None,
    tokenizer: Path | None,
    labels: str | None,
    output_name: str | None,
    models_dir: Path | None,
    torch_only: bool,
    no_register: bool,
) -> None:
    """Import PATH (a checkpoint folder or a .onnx file) as a modq model, and register it.

    Every model label must be mapped (--map LABEL=CATEGORY) or ignored (--ignore LABEL).
    """
    from gpu_worker.labels import parse_label_pairs
    from modq.settings import get_settings

    root = models_dir or get_settings().model_dir.parent
    try:
        label_map = parse_label_pairs(pairs)
        if path.is_dir():
            if tokenizer or labels or output_name:
                raise click.UsageError(
                    "--tokenizer, --labels and --output-name are for ONNX files only"
                )
            from training.byo import import_hf_checkpoint

            folder = import_hf_checkpoint(
                path,
                name=name,
                label_map=label_map,
                ignore=ignore,
                activation=activation,
                max_length=max_length,
                torch_only=torch_only,
                models_root=root,
            )
        else:
            if torch_only:
                raise click.UsageError("--torch-only is for checkpoint folders only")
            if tokenizer is None or not labels:
                raise click.UsageError("an ONNX file needs --tokenizer and --labels")
            from training.byo_onnx import import_onnx_file

            folder = import_onnx_file(
                path,
                name=name,
                labels=[label.strip() for label in labels.split(",")],
                label_map=label_map,
                ignore=ignore,
                tokenizer=tokenizer,
                activation=activation or "sigmoid",
                max_length=max_length or 512,
                output_name=output_name,
                models_root=root,
            )
        click.echo((folder / "MODEL_CARD.md").read_text())
        click.echo(f"model folder: {folder}")
        if no_register:
            return
        from lifecycle import register_model_folder

        # a torch-only folder has no ONNX graph to smoke-test; its reload was checked above
        registered = register_model_folder(folder, name=name, check_loads=not torch_only)
        click.echo(f"registered {registered.name} v{registered.version}")
    except ModerationError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from exc
