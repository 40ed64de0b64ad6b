"""Fine-tuning: a few steps on a tiny subset train the encoder and export with parity."""

import json

import numpy as np
import pytest

from gpu_worker.backends.onnx import OnnxBackend
from gpu_worker.manifest import ModelManifest
from modq.settings import get_settings
from policy import load_policy
from training.datasets import COVERED_CATEGORIES
from training.evaluate import held_out_examples, validation_examples
from training.export import PARITY_TOLERANCE
from training.finetune import FineTuneConfig, bucketed_batches


@pytest.mark.long
@pytest.mark.slow
def test_a_few_steps_train_and_export_one_graph(fp32_model_dir, tmp_path):
    pytest.importorskip("torch")
    from training.finetune_build import FINE_TUNED_NAME, build_fine_tuned

    held_out = held_out_examples()[:48]
    config = FineTuneConfig(epochs=1, batch_size=8, max_length_tokens=64, max_steps=4)
    folder = build_fine_tuned(
        tmp_path,
        load_policy(get_settings().policy_path),
        fp32_model_dir,
        config,
        examples_limit=64,
        held_out=held_out,
        validation=validation_examples()[:48],
    )
    manifest = ModelManifest.read(folder)
    source = ModelManifest.read(fp32_model_dir)
    assert manifest.name == FINE_TUNED_NAME and manifest.version == folder.name
    assert manifest.categories == source.categories
    assert manifest.input_names == source.input_names
    assert manifest.output_name == source.output_name
    assert manifest.extra["onnx_parity_max_abs_diff"] <= PARITY_TOLERANCE
    assert manifest.extra["fine_tuned_from"]["version"] == source.version
    assert manifest.extra["fine_tune_config"]["max_steps"] == 4

    texts = [e.text for e in held_out]
    tuned = OnnxBackend(folder, device="cpu").score(texts)
    frozen = OnnxBackend(fp32_model_dir, device="cpu").score(texts)
    assert tuned.shape == frozen.shape
    assert ((tuned >= 0) & (tuned <= 1)).all()  # sigmoid scores, as the default model's
    assert np.abs(tuned - frozen).max() > 1e-3  # the weights really moved
    metrics = json.loads((folder / "metrics.json").read_text())
    assert set(metrics) <= set(COVERED_CATEGORIES)
    assert sum(m["held_out_rows"] for m in metrics.values()) > 0
    calibration = json.loads((folder / "calibration.json").read_text())
    assert calibration["model"]["version"] == manifest.version  # its own thresholds


def test_bucketed_batches_cover_every_row_once_with_similar_lengths():
    import random

    lengths = [random.Random(i).randint(1, 200) for i in range(1000)]
    batches = bucketed_batches(lengths, 32, random.Random(0))
    assert sorted(i for b in batches for i in b) == list(range(1000))
    assert all(len(b) <= 32 for b in batches)
    spread = np.mean([max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches])
    assert spread < 40  # unsorted batches of 32 from 1..200 spread ~180
