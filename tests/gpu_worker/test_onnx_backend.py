import json
import shutil

import numpy as np
import pytest

from gpu_worker.backends.onnx import CPU, CUDA, OnnxBackend, choose_providers
from modq.errors import ModelUnavailable


def test_provider_choice_is_made_at_run_time():
    assert choose_providers("auto", [CPU]) == [CPU]
    assert choose_providers("auto", [CUDA, CPU]) == [CUDA, CPU]
    assert choose_providers("cpu", [CUDA, CPU]) == [CPU]
    with pytest.raises(ModelUnavailable, match="cuda"):
        choose_providers("cuda", [CPU])


def test_loads_the_real_model_and_scores_in_range(model_dir):
    import onnxruntime

    backend = OnnxBackend(model_dir)
    assert backend.device == ("cuda" if CUDA in backend.providers else "cpu")
    if CUDA not in onnxruntime.get_available_providers():
        assert backend.device == "cpu" and backend.providers == (CPU,)
    scores = backend.score(["you are a worthless idiot", "lovely weather today"])
    assert scores.shape == (2, len(backend.categories))
    assert np.all((scores >= 0) & (scores <= 1))
    assert backend.model_calls == 1 and backend.texts_scored == 2


def test_long_text_is_truncated_to_the_model_limit(model_dir):
    backend = OnnxBackend(model_dir)
    (ids,) = backend.tokenize(["word " * 5000])
    assert len(ids) == backend.manifest.max_length_tokens


def test_missing_and_corrupt_models_are_typed_errors(model_dir, tmp_path):
    with pytest.raises(ModelUnavailable, match="modq model build"):
        OnnxBackend(tmp_path / "nothing-here")
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    (broken / "model.onnx").write_bytes(b"not an onnx graph")
    with pytest.raises(ModelUnavailable, match="cannot load ONNX"):
        OnnxBackend(broken)
    manifest = json.loads((model_dir / "manifest.json").read_text())
    (broken / "manifest.json").write_text(json.dumps({**manifest, "categories": ["gambling"]}))
    with pytest.raises(ModelUnavailable, match="unknown categories"):
        OnnxBackend(broken)
