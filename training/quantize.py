"""`modq model build --int8` / `modq model quantize`: an int8 variant of an fp32 model folder.

ONNX Runtime dynamic quantization: weights int8 per output channel (per-tensor drifted badly
here, see FIELD-NOTES), activations quantized per batch at run time. Only MatMul is quantized:
the embedding tables (Gather) and the small head (Gemm) stay fp32 (see ``QUANTIZED_OPS``). The
int8 folder records its accuracy beside fp32's on the same held-out rows, and both speeds.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gpu_worker.manifest import ModelManifest
from modq.errors import ModelUnavailable
from policy import Policy
from training.artifacts import onnx_version, publish_folder, staging_folder
from training.evaluate import (
    held_out_examples,
    metrics_for_scores,
    score_folder,
    texts_per_s,
    validation_examples,
)

INT8_SUFFIX = "-int8"
# Measured on the default model's held-out rows (see docs in the model card): every variant
# tried (MatMul only or with the embedding Gather, reduce_range on or off) kept each category
# within 0.0022 ROC-AUC of fp32 and ran at the same speed (~180 vs fp32 ~78 texts/s). MatMul
# only drifted least (mean |score diff| 0.0056; 0.0058 with Gather, 0.0060 with reduce_range;
# worst AUC drop 0.0014 vs 0.0022); quantizing Gather too would shrink the file from 59 to 23 MB.
# reduce_range (7-bit weights, for CPUs without VNNI) bought nothing on this VNNI CPU.
QUANTIZED_OPS = ("MatMul",)
REDUCE_RANGE = False
CPU_DEFAULT_MAX_AUC_DROP = 0.005  # int8 serves on CPU only if no category loses more AUC
SPEED_TEXTS = 1000  # evaluation texts timed for texts/s (`modq model quantize`)
BUILD_SPEED_TEXTS = 200  # ... and in `modq model build` (its time budget)
SCORING_THREADS = 2  # ONNX Runtime intra-op threads when scoring validation and evaluation
BATCH_CHECK_TEXTS = 256  # validation texts scored alone and in batches (batch_dependence)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def quantize_onnx(
    fp32_onnx: Path,
    int8_onnx: Path,
    *,
    op_types: tuple[str, ...] = QUANTIZED_OPS,
    reduce_range: bool = REDUCE_RANGE,
) -> None:
    """Dynamic int8 quantization, per-channel weights, of the given op types."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        fp32_onnx,
        int8_onnx,
        op_types_to_quantize=list(op_types),
        per_channel=True,
        reduce_range=reduce_range,
        weight_type=QuantType.QInt8,
    )


def auc_deltas(
    fp32: dict[str, dict[str, Any]], int8: dict[str, dict[str, Any]]
) -> dict[str, dict[str, float | None]]:
    """Per category: fp32 and int8 ROC-AUC and int8 - fp32 (None where a side has no AUC)."""
    out: dict[str, dict[str, float | None]] = {}
    for category, entry in fp32.items():
        before, after = entry.get("roc_auc"), int8.get(category, {}).get("roc_auc")
        delta = None if before is None or after is None else round(after - before, 4)
        out[category] = {"fp32": before, "int8": after, "delta": delta}
    return out


def is_cpu_default(deltas: dict[str, dict[str, float | None]]) -> bool:
    """True if every category with an AUC keeps it within CPU_DEFAULT_MAX_AUC_DROP of fp32."""
    measured = [d["delta"] for d in deltas.values() if d["delta"] is not None]
    return bool(measured) and all(-delta <= CPU_DEFAULT_MAX_AUC_DROP for delta in measured)


def batch_dependence(folder: Path, texts: list[str], policy: Policy) -> dict[str, Any]:
    """How much a text's score moves with its batch-mates (dynamic int8 quantizes activations
    with one scale per batch; fp32 does not move): each text alone vs in batches of 16 in a
    shuffled order, and the share of decisions that differ."""
    import random

    import numpy as np

    from gpu_worker.backends.onnx import OnnxBackend
    from policy import decide

    backend = OnnxBackend(folder, device="cpu", intra_op_threads=SCORING_THREADS)
    order = list(range(len(texts)))
    random.Random(0).shuffle(order)
    alone = np.concatenate([backend.score([t]) for t in texts])
    batched = np.zeros_like(alone)
    for start in range(0, len(order), 16):
        rows = order[start : start + 16]
        batched[rows] = backend.score([texts[i] for i in rows])
    diff = np.abs(alone - batched)

    def decisions(matrix: Any) -> list[Any]:
        return [
            decide(dict(zip(backend.categories, map(float, row), strict=True)), policy).decision
            for row in matrix
        ]

    flips = [a != b for a, b in zip(decisions(alone), decisions(batched), strict=True)]
    return {
        "texts": len(texts),
        "mean_abs_diff": round(float(diff.mean()), 4),
        "p99_abs_diff": round(float(np.quantile(diff, 0.99)), 4),
        "max_abs_diff": round(float(diff.max()), 4),
        "decision_flip_rate": round(float(np.mean(flips)), 4),
    }


def quantize_model(
    fp32_folder: Path,
    models_root: Path,
    policy: Policy | None = None,
    *,
    speed_texts: int = SPEED_TEXTS,
) -> Path:
    """Write the int8 variant of ``fp32_folder`` under ``models_root``; return its folder.

    The parity gate is decided on validation (a model choice): ``extra`` in its manifest holds
    ``precision``, ``quantized_from``, per-category validation AUC of both and their deltas,
    texts/s of both on this machine and ``cpu_default``. The int8 model is then calibrated on
    validation and measured on evaluation (``training.finish``) like any built model.
    """
    from training.evasion import folder_evasion
    from training.finish import finish_folder
    from training.scores import ScoreSet, load_scores, save_scores
    from training.split import EVALUATION, VALIDATION

    fp32_folder = Path(fp32_folder).resolve()
    source = ModelManifest.read(fp32_folder)
    if source.extra.get("precision") == "int8":
        raise ModelUnavailable(f"{fp32_folder} holds an int8 model already; give an fp32 one")
    if policy is None:
        from modq.settings import get_settings
        from policy import load_policy

        policy = load_policy(get_settings().policy_path)
    validation, evaluation = validation_examples(), held_out_examples()
    staging = staging_folder(models_root)
    try:
        int8_onnx = staging / source.onnx_file
        quantize_onnx(fp32_folder / source.onnx_file, int8_onnx)
        shutil.copy(fp32_folder / source.tokenizer_file, staging / source.tokenizer_file)
        version = onnx_version(int8_onnx)
        name = source.name + INT8_SUFFIX
        extra: dict[str, Any] = {
            **{k: v for k, v in source.extra.items() if k != "onnx_parity_max_abs_diff"},
            "precision": "int8",
            "quantized_from": source.version,
            "quantized_from_name": source.name,
            "quantization": {
                "method": "onnxruntime.quantization.quantize_dynamic",
                "weight_type": "QInt8",
                "per_channel": True,
                "reduce_range": REDUCE_RANGE,
                "op_types": list(QUANTIZED_OPS),
            },
        }
        draft = ModelManifest(
            name=name,
            version=version,
            categories=source.categories,
            max_length_tokens=source.max_length_tokens,
            onnx_file=source.onnx_file,
            tokenizer_file=source.tokenizer_file,
            input_names=source.input_names,
            output_name=source.output_name,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            extra=extra,
        )
        draft.write(staging)
        _log(f"scoring {len(validation)} validation rows with int8 …")
        categories, int8_validation = score_folder(
            staging, [e.text for e in validation], threads=SCORING_THREADS
        )
        try:
            fp32_validation = load_scores(fp32_folder, VALIDATION).scores
        except ModelUnavailable:
            _log("fp32 folder has no stored validation scores: scoring it …")
            fp32_validation = score_folder(
                fp32_folder, [e.text for e in validation], threads=SCORING_THREADS
            )[1]
        deltas = auc_deltas(
            metrics_for_scores(categories, fp32_validation, validation, policy),
            metrics_for_scores(categories, int8_validation, validation, policy),
        )
        _log(f"scoring {len(evaluation)} evaluation rows with int8 …")
        _, int8_evaluation = score_folder(
            staging, [e.text for e in evaluation], threads=SCORING_THREADS
        )
        extra["batch_dependence"] = batch_dependence(
            staging, [e.text for e in validation][:BATCH_CHECK_TEXTS], policy
        )
        timed = [e.text for e in evaluation if e.source == "insults"][:speed_texts]
        _log(f"timing fp32 and int8 on {len(timed)} evaluation texts …")
        speed = texts_per_s([fp32_folder, staging], timed)
        extra["roc_auc_vs_fp32"] = deltas
        extra["parity_rows"] = f"validation ({len(validation)} rows)"
        extra["cpu_default"] = is_cpu_default(deltas)
        extra["texts_per_s"] = {
            "fp32": speed[str(fp32_folder)],
            "int8": speed[str(staging)],
            "how": f"{len(timed)} evaluation insults texts, one process, ONNX Runtime "
            "intra-op threads 1, length-sorted batches of 32, tokenization included, "
            "median of 3 alternating runs",
        }
        manifest = dataclasses.replace(draft, extra=extra)
        manifest.write(staging)
        sets = {
            VALIDATION: ScoreSet(validation, categories, int8_validation),
            EVALUATION: ScoreSet(evaluation, categories, int8_evaluation),
        }
        save_scores(staging, sets)
        finish_folder(staging, manifest, policy, sets, evasion=folder_evasion(staging, evaluation))
        final = publish_folder(staging, models_root, name, version)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _log(
        f"built {name} {version}: {speed[str(fp32_folder)]} → {speed[str(staging)]} texts/s, "
        f"cpu_default={extra['cpu_default']} → {final}"
    )
    return final
