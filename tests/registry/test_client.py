"""The MLflow registry for real: SQLite store and local artifacts in a temp folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lifecycle import register_model_folder
from modq.errors import ModelUnavailable, UnknownModel
from registry import ModelRef, ModelRegistry, parse_model_uri

NAME = "modq-test"


def test_register_resolve_alias_and_fetch(
    model_registry: ModelRegistry, model_dir: Path, variant_model_dir: Path
) -> None:
    first = register_model_folder(model_dir, name=NAME, registry=model_registry)
    second = register_model_folder(variant_model_dir, name=NAME, registry=model_registry)
    assert (first.version, second.version) == ("1", "2")
    assert first.digest == json.loads((model_dir / "manifest.json").read_text())["version"]
    assert (
        first.tags["modq.family"] == json.loads((model_dir / "manifest.json").read_text())["name"]
    )
    assert "harassment" in json.loads(first.tags["modq.thresholds"])  # its calibrated cuts
    assert "roc_auc" in first.description or "ROC-AUC" in first.description  # the model card

    model_registry.set_alias(NAME, "production", "2")
    resolved = model_registry.resolve(ModelRef(NAME, alias="production"))
    assert (resolved.version, resolved.digest) == ("2", second.digest)
    folder = model_registry.local_folder(resolved)
    assert json.loads((folder / "manifest.json").read_text())["version"] == second.digest
    assert [(e.version, e.aliases) for e in model_registry.versions(NAME)] == [
        ("1", ()),
        ("2", ("production",)),
    ]
    assert model_registry.aliases(NAME) == {"production": "2"}


def test_same_files_register_once(model_registry: ModelRegistry, model_dir: Path) -> None:
    first = register_model_folder(model_dir, name=NAME, registry=model_registry)
    again = register_model_folder(model_dir, name=NAME, registry=model_registry)
    assert again.version == first.version
    assert len(model_registry.versions(NAME)) == 1


def test_unknown_names_versions_and_aliases_are_clear_errors(
    model_registry: ModelRegistry, model_dir: Path
) -> None:
    with pytest.raises(UnknownModel, match="no-such-model"):
        model_registry.versions("no-such-model")
    register_model_folder(model_dir, name=NAME, registry=model_registry)
    with pytest.raises(UnknownModel, match="no version 7"):
        model_registry.get(NAME, "7")
    with pytest.raises(UnknownModel, match="no alias 'staging'"):
        model_registry.resolve(ModelRef(NAME, alias="staging"))


def test_a_corrupt_folder_is_never_registered(
    model_registry: ModelRegistry, model_dir: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("manifest.json", "tokenizer.json"):
        (broken / name).write_bytes((model_dir / name).read_bytes())
    (broken / "model.onnx").write_bytes((model_dir / "model.onnx").read_bytes()[:4096])
    with pytest.raises(ModelUnavailable, match="cannot load ONNX model"):
        register_model_folder(broken, name=NAME, registry=model_registry)
    with pytest.raises(UnknownModel):
        model_registry.versions(NAME)


def test_an_artifact_changed_after_registration_is_refused(
    model_registry: ModelRegistry, model_dir: Path
) -> None:
    entry = register_model_folder(model_dir, name=NAME, registry=model_registry)
    folder = model_registry.local_folder(entry)
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "version": "tampered"}))
    with pytest.raises(ModelUnavailable, match="not the registered"):
        model_registry.local_folder(entry)


@pytest.mark.parametrize(
    ("uri", "ref"),
    [
        ("models:/modq-text@production", ModelRef("modq-text", alias="production")),
        ("models:/modq-text/3", ModelRef("modq-text", version="3")),
    ],
)
def test_model_uris(uri: str, ref: ModelRef) -> None:
    assert parse_model_uri(uri) == ref
    assert str(ref) == uri


@pytest.mark.parametrize("uri", ["modq-text", "models:/modq-text", "models:/a/b/c", "runs:/x"])
def test_bad_model_uris(uri: str) -> None:
    with pytest.raises(UnknownModel, match="expected models:/NAME@ALIAS"):
        parse_model_uri(uri)
