"""A tiny random BERT sequence classifier, saved like any Hugging Face checkpoint."""

from __future__ import annotations

import shutil
from pathlib import Path

LABELS = ("toxic", "spam_like", "neutral")


def save_tiny_bert(folder: Path, *, labels: tuple[str, ...] = LABELS, seed: int = 0) -> Path:
    """``save_pretrained`` of a 2-layer, 32-wide BERT with the MiniLM tokenizer next to it.

    Weights are drawn wide (initializer_range 0.5) so that texts get clearly different scores.
    """
    import torch
    from tokenizers import Tokenizer
    from transformers import BertConfig, BertForSequenceClassification

    from training.encoder import encoder_dir

    tokenizer_json = encoder_dir() / "tokenizer.json"
    vocab_size = Tokenizer.from_file(str(tokenizer_json)).get_vocab_size()
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        initializer_range=0.5,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    torch.manual_seed(seed)
    BertForSequenceClassification(config).save_pretrained(folder)
    shutil.copy(tokenizer_json, folder / "tokenizer.json")
    return folder


def reference_probs(folder: Path, texts: list[str], *, softmax: bool) -> object:
    """Probabilities per model label, straight from transformers (no modq code involved)."""
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = BertForSequenceClassification.from_pretrained(folder, local_files_only=True).eval()
    batch = tokenizer(texts, padding=True, truncation=True, max_length=512, return_tensors="pt")
    with torch.inference_mode():
        logits = model(**batch).logits
    probs = torch.softmax(logits, dim=-1) if softmax else torch.sigmoid(logits)
    return probs.numpy()
