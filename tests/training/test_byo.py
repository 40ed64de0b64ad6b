"""Bring your own model: a tiny random BERT (and its ONNX export) imported, served, mapped."""

import hashlib
import json

import numpy as np
import pytest
from click.testing import CliRunner

from gpu_worker.backends.onnx import OnnxBackend
from gpu_worker.labels import build_label_mapping, parse_label_pairs
from modq.errors import LabelMappingError, ModelUnavailable
from tests.tiny_models import LABELS, reference_probs, save_tiny_bert
from training.byo import PARITY_TOLERANCE, import_hf_checkpoint
from training.byo_onnx import import_onnx_file

TEXTS = [
    "you are a worthless idiot",
    "lovely weather today",
    "CLICK HERE to win a free phone " * 4,
    "word " * 700,  # truncated at 512 tokens
    "ok",
]
MAPPING = {"toxic": "harassment", "spam_like": "spam"}


def raw_scores(backend, texts):
    """The model itself, one input per text (as the reference computes it; no windows)."""
    return backend.run(backend.tokenize(texts))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="module")
def imported(checkpoint, tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    folder = import_hf_checkpoint(
        checkpoint, name="tiny", label_map=MAPPING, ignore=["neutral"], models_root=root
    )
    return folder


def _staging_left(root):
    return [p.name for p in root.iterdir() if p.name.startswith(".")] if root.exists() else []


def test_checkpoint_imports_as_a_normal_model_folder(imported, checkpoint):
    assert {p.name for p in imported.iterdir()} >= {
        "manifest.json",
        "model.onnx",
        "tokenizer.json",
        "MODEL_CARD.md",
        "hf",
    }
    manifest = json.loads((imported / "manifest.json").read_text())
    digest = hashlib.sha256((imported / "model.onnx").read_bytes()).hexdigest()[:12]
    assert manifest["version"] == digest and imported.name == digest
    assert manifest["name"] == "tiny" and imported.parent.name == "tiny"
    # canonical order, not the model's label order; the ignored label scores nothing
    assert manifest["categories"] == ["harassment", "spam"]
    assert manifest["extra"]["label_mapping"]["activation"] == "softmax"  # single-label model
    assert manifest["extra"]["onnx_parity_max_abs_diff"] <= PARITY_TOLERANCE
    assert "| neutral | (ignored) |" in (imported / "MODEL_CARD.md").read_text()
    assert (imported / "hf" / "config.json").exists()


def test_onnx_backend_serves_it_within_tolerance_of_transformers(imported, checkpoint):
    backend = OnnxBackend(imported)
    served = backend.run(backend.tokenize(TEXTS))  # the model itself: no windows
    probs = reference_probs(checkpoint, TEXTS, softmax=True)
    expected = probs[:, [LABELS.index("toxic"), LABELS.index("spam_like")]]
    assert served.shape == (len(TEXTS), 2)
    assert np.abs(served - expected).max() <= PARITY_TOLERANCE
    assert np.ptp(served[:, 0]) > 0.01  # the texts really score differently


def test_several_labels_feed_one_category_by_their_max(checkpoint, tmp_path):
    folder = import_hf_checkpoint(
        checkpoint,
        name="tiny-max",
        label_map={"toxic": "harassment", "spam_like": "harassment", "neutral": "spam"},
        activation="sigmoid",
        models_root=tmp_path,
    )
    served = raw_scores(OnnxBackend(folder), TEXTS)
    probs = reference_probs(checkpoint, TEXTS, softmax=False)
    expected = np.stack([probs[:, :2].max(axis=1), probs[:, 2]], axis=1)
    assert np.abs(served - expected).max() <= PARITY_TOLERANCE
    # the max really picks different labels on different texts, or this test proves little
    assert len(set(np.argmax(probs[:, :2], axis=1))) == 2


def test_a_label_without_a_mapping_is_an_error_and_builds_nothing(checkpoint, tmp_path):
    with pytest.raises(LabelMappingError, match=r"no mapping: \['neutral'\].*--ignore"):
        import_hf_checkpoint(checkpoint, name="t", label_map=MAPPING, models_root=tmp_path)
    assert not (tmp_path / "t").exists() and not _staging_left(tmp_path)


def test_an_unknown_category_is_an_error(checkpoint, tmp_path):
    with pytest.raises(LabelMappingError, match=r"unknown categories.*gambling"):
        import_hf_checkpoint(
            checkpoint,
            name="t",
            label_map={**MAPPING, "neutral": "gambling"},
            models_root=tmp_path,
        )
    with pytest.raises(LabelMappingError, match=r"does not have.*insult"):
        import_hf_checkpoint(
            checkpoint,
            name="t",
            label_map={**MAPPING, "insult": "harassment"},
            ignore=["neutral"],
            models_root=tmp_path,
        )
    assert not _staging_left(tmp_path)


def test_mapping_rules():
    with pytest.raises(LabelMappingError, match="both mapped and ignored"):
        build_label_mapping(["a", "b"], {"a": "spam", "b": "spam"}, ["a"])
    with pytest.raises(LabelMappingError, match="every label is ignored"):
        build_label_mapping(["a"], {}, ["a"])
    with pytest.raises(LabelMappingError, match="LABEL=CATEGORY"):
        parse_label_pairs(["toxic:harassment"])
    with pytest.raises(LabelMappingError, match="mapped twice"):
        parse_label_pairs(["toxic=harassment", "toxic=spam"])
    mapping = build_label_mapping(["s", "h", "x"], {"s": "spam", "h": "hate_speech"}, ["x"])
    assert mapping.categories == ("hate_speech", "spam") and mapping.columns() == [[1], [0]]


def test_a_corrupt_checkpoint_is_a_typed_error(checkpoint, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(checkpoint, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ModelUnavailable, match="cannot load the checkpoint"):
        import_hf_checkpoint(
            broken, name="t", label_map=MAPPING, ignore=["neutral"], models_root=tmp_path / "m"
        )
    (broken / "config.json").write_text("{not json")
    with pytest.raises(ModelUnavailable, match=r"corrupt .*config\.json"):
        import_hf_checkpoint(broken, name="t", label_map=MAPPING, models_root=tmp_path / "m")
    with pytest.raises(ModelUnavailable, match=r"no config\.json"):
        import_hf_checkpoint(tmp_path / "m", name="t", label_map=MAPPING, models_root=tmp_path)


def _export_raw(checkpoint, path):
    """The checkpoint as a plain ONNX classifier: three inputs, ``logits`` out."""
    import warnings

    import torch
    from transformers import BertForSequenceClassification

    model = BertForSequenceClassification.from_pretrained(
        checkpoint, local_files_only=True, attn_implementation="eager"
    ).eval()
    ids = torch.tensor([[101, 2023, 2003, 102], [101, 7592, 102, 0]])
    mask = (ids != 0).long()
    names = ["input_ids", "attention_mask", "token_type_ids"]
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (ids, mask, torch.zeros_like(ids)),
            str(path),
            input_names=names,
            output_names=["logits"],
            dynamic_axes={**{n: {0: "b", 1: "s"} for n in names}, "logits": {0: "b"}},
            opset_version=17,
            dynamo=False,
        )
    return path


@pytest.fixture(scope="module")
def onnx_file(checkpoint, tmp_path_factory):
    return _export_raw(checkpoint, tmp_path_factory.mktemp("onnx") / "classifier.onnx")


def test_an_onnx_file_imports_with_the_mapping_in_the_graph(onnx_file, checkpoint, tmp_path):
    import onnx

    folder = import_onnx_file(
        onnx_file,
        name="tiny-onnx",
        labels=list(LABELS),
        label_map={"toxic": "harassment", "spam_like": "harassment", "neutral": "spam"},
        tokenizer=checkpoint / "tokenizer.json",
        activation="softmax",
        models_root=tmp_path,
    )
    graph = onnx.load(str(folder / "model.onnx")).graph
    assert [i.name for i in graph.input] == ["input_ids", "attention_mask"]
    assert [o.name for o in graph.output] == ["scores"]
    served = raw_scores(OnnxBackend(folder), TEXTS)
    probs = reference_probs(checkpoint, TEXTS, softmax=True)
    expected = np.stack([probs[:, :2].max(axis=1), probs[:, 2]], axis=1)
    assert np.abs(served - expected).max() <= PARITY_TOLERANCE
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["categories"] == ["harassment", "spam"]
    assert manifest["extra"]["source"] == "onnx-file" and not (folder / "hf").exists()


def test_bad_onnx_inputs_are_typed_errors(onnx_file, checkpoint, tmp_path):
    options = dict(
        label_map=MAPPING,
        ignore=["neutral"],
        tokenizer=checkpoint / "tokenizer.json",
        models_root=tmp_path / "m",
    )
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(onnx_file.read_bytes()[:5000])
    with pytest.raises(ModelUnavailable, match="cannot read ONNX file"):
        import_onnx_file(corrupt, name="t", labels=list(LABELS), **options)
    with pytest.raises(ModelUnavailable, match=r"shape \['b', 3\].*\(batch, 4\)"):
        wider = {**options, "ignore": ["neutral", "extra"]}
        import_onnx_file(onnx_file, name="t", labels=[*LABELS, "extra"], **wider)
    with pytest.raises(LabelMappingError, match="no mapping"):
        import_onnx_file(onnx_file, name="t", labels=list(LABELS), **{**options, "ignore": []})
    assert not (tmp_path / "m" / "t").exists()


def test_cli_imports_a_checkpoint_and_reports_mapping_errors(checkpoint, tmp_path):
    import cli.import_cmds  # noqa: F401  (adds `import` to the model group)
    from cli.model_cmds import model

    runner = CliRunner()
    args = ["import", str(checkpoint), "--name", "tiny-cli", "--models-dir", str(tmp_path)]
    maps = ["--map", "toxic=harassment", "--map", "spam_like=spam"]
    result = runner.invoke(model, [*args, *maps, "--ignore", "neutral", "--no-register"])
    assert result.exit_code == 0, result.output
    (folder,) = (tmp_path / "tiny-cli").iterdir()
    assert f"model folder: {folder}" in result.output and "registered" not in result.output
    failed = runner.invoke(model, [*args, *maps, "--no-register"])
    assert failed.exit_code == 1
    assert "label_mapping_error" in failed.output and "neutral" in failed.output


@pytest.mark.integration
def test_cli_registers_the_import_and_the_registry_copy_serves_in_both_backends(
    checkpoint, tmp_path, registry_settings, model_registry, monkeypatch
):
    import cli.import_cmds  # noqa: F401
    from cli.model_cmds import model
    from gpu_worker.backends.torch import TorchBackend
    from modq.settings import get_settings

    for key, value in registry_settings.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    args = ["import", str(checkpoint), "--name", "tiny-reg", "--models-dir", str(tmp_path)]
    maps = ["--map", "toxic=harassment", "--map", "spam_like=spam", "--ignore", "neutral"]
    try:
        result = CliRunner().invoke(model, [*args, *maps])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    (entry,) = model_registry.versions("tiny-reg")
    assert f"registered tiny-reg v{entry.version}" in result.output
    (built,) = (tmp_path / "tiny-reg").iterdir()
    assert entry.digest == built.name
    copy = model_registry.local_folder(entry)
    assert (copy / "hf" / "config.json").exists()  # the checkpoint travels with the version
    served = raw_scores(OnnxBackend(copy), TEXTS)
    assert np.abs(raw_scores(TorchBackend(copy), TEXTS) - served).max() <= PARITY_TOLERANCE
