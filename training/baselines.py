"""Offline baselines on the model's own split: TF-IDF + logistic regression, and the
``alt-profanity-check`` package (one offensive-language score, compared on harassment).

Both are measured on the same held-out rows as the served models, so the model card can put
them side by side. The TF-IDF model trains on the same training rows, one head per category,
on the rows whose label for that category is known.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from modq.categories import HARASSMENT
from policy import Policy
from training.datasets import COVERED_CATEGORIES, Example
from training.evaluate import metrics_for_scores, sampled_rows
from training.split import EVALUATION, TRAIN

TFIDF_C = 4.0  # fixed, not tuned on the held-out rows (5-fold CV on insults train chose 2-8)
PROFANITY_CHECK_CATEGORIES = (HARASSMENT,)


def tfidf_lr_scores(
    train: Sequence[Example], test_texts: Sequence[str], *, seed: int = 0
) -> np.ndarray:
    """Word 1-2-gram + char 2-5-gram TF-IDF, one logistic regression per category."""
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    words = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, lowercase=True)
    chars = TfidfVectorizer(
        analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True, lowercase=True
    )
    train_texts = [e.text for e in train]
    features = hstack([words.fit_transform(train_texts), chars.fit_transform(train_texts)]).tocsr()
    test = hstack([words.transform(test_texts), chars.transform(test_texts)]).tocsr()
    scores = np.zeros((len(test_texts), len(COVERED_CATEGORIES)), np.float32)
    for column, category in enumerate(COVERED_CATEGORIES):
        labels = np.array([e.labels[category] for e in train])
        known = labels >= 0
        model = LogisticRegression(C=TFIDF_C, max_iter=2000, random_state=seed)
        model.fit(features[known], labels[known])
        scores[:, column] = model.predict_proba(test)[:, 1]
    return scores


def profanity_check_scores(texts: Sequence[str]) -> np.ndarray:
    """``alt-profanity-check``'s probability that each text is offensive."""
    from profanity_check import predict_prob

    return np.asarray(predict_prob(list(texts)), dtype=np.float32)


def run_baselines(
    policy: Policy, examples: Sequence[Example] | None = None
) -> dict[str, dict[str, Any]]:
    """``{baseline: {"description", "seconds", "metrics": {category: metrics}}}`` on the
    held-out rows of ``examples`` (default: the build's embedded sample: its training rows
    and the evaluation rows every model is measured on)."""
    if examples is not None:
        rows = list(examples)
        train = [e for e in rows if e.split == TRAIN]
        held_out = [e for e in rows if e.held_out]
    else:
        train, held_out = sampled_rows(TRAIN), sampled_rows(EVALUATION)
    texts = [e.text for e in held_out]
    report: dict[str, dict[str, Any]] = {}

    started = time.monotonic()
    scores = tfidf_lr_scores(train, texts)
    report["tfidf_lr"] = {
        "description": "TF-IDF (word 1-2-grams + char 2-5-grams, sublinear tf) + logistic "
        f"regression per category (C={TFIDF_C}), trained on the same training rows",
        "seconds": round(time.monotonic() - started, 1),
        "metrics": metrics_for_scores(COVERED_CATEGORIES, scores, held_out, policy),
    }

    started = time.monotonic()
    offensive = profanity_check_scores(texts)[:, None]
    report["profanity_check"] = {
        "description": "alt-profanity-check 1.9.1 predict_prob (its own pretrained model, one "
        "offensive-language score), compared on harassment only",
        "seconds": round(time.monotonic() - started, 1),
        "metrics": metrics_for_scores(PROFANITY_CHECK_CATEGORIES, offensive, held_out, policy),
    }
    return report
