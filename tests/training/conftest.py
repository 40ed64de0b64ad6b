"""Fixtures of the training room: the default (frozen-encoder) fp32 model and its int8 variant.

``current`` may point at a variant (int8, fine-tuned); each variant's manifest names the
folder it came from, which leads back to the default model.
"""

from pathlib import Path

import pytest

from gpu_worker.manifest import ModelManifest

SPEED_TEXTS = 128  # timing sample in tests (the build uses 1,000)


def source_folder(folder: Path) -> Path | None:
    """The folder a variant was made from, or None for the default model."""
    extra = ModelManifest.read(folder).extra
    models_root = folder.parent.parent
    if extra.get("precision") == "int8":
        return models_root / extra["quantized_from_name"] / extra["quantized_from"]
    if extra.get("fine_tuned"):
        origin = extra["fine_tuned_from"]
        return models_root / origin["name"] / origin["version"]
    return None


@pytest.fixture(scope="session")
def fp32_model_dir(model_dir: Path) -> Path:
    """The default model: frozen MiniLM + logistic-regression heads, fp32."""
    folder = model_dir
    while (origin := source_folder(folder)) is not None:
        folder = origin
    return folder


@pytest.fixture(scope="session")
def int8_root(fp32_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models root holding the default model's int8 variant, made by `modq model quantize`."""
    from click.testing import CliRunner

    from cli.main import main

    root = tmp_path_factory.mktemp("models")
    command = ["model", "quantize", str(fp32_model_dir), "--models-dir", str(root)]
    result = CliRunner().invoke(main, [*command, "--speed-texts", str(SPEED_TEXTS)])
    assert result.exit_code == 0, result.output
    return root


@pytest.fixture(scope="session")
def int8_dir(int8_root: Path) -> Path:
    """The int8 variant of the default model (fp32 folder recorded in its manifest)."""
    (family,) = int8_root.glob("*-int8")
    (folder,) = family.iterdir()
    return folder
