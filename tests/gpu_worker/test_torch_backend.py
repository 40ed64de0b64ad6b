"""The PyTorch backend: same contract as ONNX Runtime, same scores (≤ 1e-4) on the same folder."""

import json
import shutil
import uuid

import numpy as np
import pytest

from gpu_worker.backends.onnx import OnnxBackend
from gpu_worker.backends.torch import TorchBackend, choose_torch_device
from modq.errors import ModelUnavailable
from tests.tiny_models import save_tiny_bert
from training.byo import PARITY_TOLERANCE, import_hf_checkpoint

TEXTS = [
    "you are a worthless idiot",
    "lovely weather today",
    "I will find you and break your legs",
    "CONGRATULATIONS you won a $1000 gift card!!! claim now at bit.ly/prize-now",
    "word " * 700,
    "ok",
]


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    checkpoint = save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))
    return import_hf_checkpoint(
        checkpoint,
        name="tiny",
        label_map={"toxic": "harassment", "spam_like": "spam", "neutral": "spam"},
        activation="sigmoid",
        models_root=tmp_path_factory.mktemp("models"),
    )


def test_device_choice_is_made_at_run_time():
    assert choose_torch_device("auto", False) == "cpu"
    assert choose_torch_device("auto", True) == "cuda"
    assert choose_torch_device("cpu", True) == "cpu"
    with pytest.raises(ModelUnavailable, match="cuda"):
        choose_torch_device("cuda", False)


def test_imported_checkpoint_matches_onnx(imported):
    import torch

    torch_backend = TorchBackend(imported, intra_op_threads=1)
    assert torch_backend.device == ("cuda" if torch.cuda.is_available() else "cpu")
    assert torch_backend.categories == ("harassment", "spam")
    onnx_backend = OnnxBackend(imported)
    assert torch_backend.tokenize(TEXTS) == onnx_backend.tokenize(TEXTS)
    ours = torch_backend.score(TEXTS)
    assert ours.shape == (len(TEXTS), 2) and ours.dtype == np.float32
    assert np.abs(ours - onnx_backend.score(TEXTS)).max() <= PARITY_TOLERANCE
    # dynamic padding: a row scores the same alone as in a padded batch
    alone = torch_backend.score(TEXTS[:1])
    assert np.abs(alone[0] - ours[0]).max() <= PARITY_TOLERANCE
    windows = sum(len(plan.windows) for plan in torch_backend.windows(TEXTS))
    assert torch_backend.texts_scored == windows + 1  # every window of TEXTS, then one alone
    assert torch_backend.model_calls == -(-windows // 32) + 1  # in batches of 32


def test_a_torch_only_import_serves_in_torch_and_not_in_onnx(tmp_path):
    from tests.tiny_models import reference_probs
    from training.byo import checkpoint_version

    checkpoint = save_tiny_bert(tmp_path / "ckpt", seed=1)
    folder = import_hf_checkpoint(
        checkpoint,
        name="tiny-torch",
        label_map={"toxic": "harassment", "spam_like": "spam", "neutral": "spam"},
        torch_only=True,
        models_root=tmp_path / "models",
    )
    assert not (folder / "model.onnx").exists()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["version"] == checkpoint_version(folder / "hf") == folder.name
    assert manifest["extra"]["torch_only"] is True
    probs = reference_probs(checkpoint, TEXTS, softmax=True)
    expected = np.stack([probs[:, 0], probs[:, 1:].max(axis=1)], axis=1)
    backend = TorchBackend(folder)  # the model itself, one input per text (no windows)
    assert np.abs(backend.run(backend.tokenize(TEXTS)) - expected).max() <= PARITY_TOLERANCE
    with pytest.raises(ModelUnavailable, match="cannot load ONNX"):
        OnnxBackend(folder)


@pytest.mark.slow
def test_default_model_matches_onnx(fp32_model_dir):
    folder = fp32_model_dir  # the torch backend serves fp32 weights
    torch_backend = TorchBackend(folder)
    diff = np.abs(torch_backend.score(TEXTS) - OnnxBackend(folder).score(TEXTS)).max()
    assert diff <= PARITY_TOLERANCE


def test_folders_with_nothing_to_run_in_torch_are_typed_errors(imported, fp32_model_dir, tmp_path):
    bare = tmp_path / "onnx-only"
    shutil.copytree(imported, bare, ignore=shutil.ignore_patterns("hf"))
    with pytest.raises(ModelUnavailable, match="no torch-servable checkpoint"):
        TorchBackend(bare)

    tuned = tmp_path / "fine-tuned"
    tuned.mkdir()
    for name in ("manifest.json", "tokenizer.json", "heads.npz"):
        shutil.copy(fp32_model_dir / name, tuned / name)
    manifest = json.loads((tuned / "manifest.json").read_text())
    manifest["extra"]["fine_tuned"] = True
    (tuned / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelUnavailable, match="encoder was fine-tuned"):
        TorchBackend(tuned)


def test_a_corrupt_checkpoint_is_a_typed_error(imported, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(imported, broken)
    weights = broken / "hf" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ModelUnavailable, match="cannot load the checkpoint"):
        TorchBackend(broken)


@pytest.mark.long
@pytest.mark.integration
@pytest.mark.slow
def test_a_worker_serves_the_imported_model_with_the_torch_backend(imported, tmp_path):
    """The ONNX graph is broken in this copy: only the torch backend can serve it."""
    import migrations
    from modq.schemas import ModerationResult
    from tasks import moderate
    from tests.workers import flush_private_redis, running_worker

    folder = tmp_path / "torch-only"
    shutil.copytree(imported, folder)
    (folder / "model.onnx").write_bytes(b"not an onnx graph")
    url = f"sqlite:///{tmp_path / 'results.db'}"
    migrations.upgrade(url)
    flush_private_redis()
    env = {"MODQ_DATABASE_URL": url, "MODQ_MODEL_DIR": str(folder), "MODQ_BACKEND": "torch"}
    text = f"you are a worthless idiot {uuid.uuid4().hex[:6]}"
    try:
        with running_worker(env, log_dir=tmp_path, threads=2) as worker:
            raw = moderate.delay(content_id=f"byo-{uuid.uuid4().hex[:8]}", content=text).get(
                timeout=60
            )
            assert worker.stats()["device"] in {"cpu", "cuda"}
    finally:
        flush_private_redis()
    result = ModerationResult.from_dict(raw)
    manifest = json.loads((imported / "manifest.json").read_text())
    assert (result.model_name, result.model_version) == ("tiny", manifest["version"])
    assert set(result.scores) == {"harassment", "spam"}
    assert "violence" in result.unscored_categories
    expected = OnnxBackend(imported).score([text])[0]
    got = np.array([result.scores["harassment"], result.scores["spam"]])
    assert np.abs(got - expected).max() <= PARITY_TOLERANCE
