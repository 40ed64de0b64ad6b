"""The default model's heads: per category, a logistic regression on frozen sentence embeddings
plus (optionally) a lexical TF-IDF branch, blended into one logit.

``logit = weight @ embedding + lexical_weight @ tfidf(word pieces) + bias``; the blend weights
are folded into ``weight``, ``lexical_weight`` and ``bias``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

REGULARISATION_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)


@dataclass(frozen=True, slots=True)
class Heads:
    categories: tuple[str, ...]
    weight: np.ndarray  # (n_categories, hidden)
    bias: np.ndarray  # (n_categories,)
    regularisation: dict[str, float]
    idf: np.ndarray | None = None  # (vocab,): the lexical branch, if any
    lexical_weight: np.ndarray | None = None  # (n_categories, vocab)

    def logits(self, embeddings: np.ndarray, presence: Any = None) -> np.ndarray:
        """Logits from embeddings and, with a lexical branch, the word-piece presence CSR."""
        out = embeddings @ self.weight.T + self.bias
        if self.lexical_weight is not None:
            from training.lexical import weighted

            if presence is None:
                raise ValueError("these heads have a lexical branch: pass the presence matrix")
            assert self.idf is not None
            out = out + np.asarray(weighted(presence, self.idf) @ self.lexical_weight.T)
        return np.asarray(out, np.float64)

    def predict(self, embeddings: np.ndarray, presence: Any = None) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logits(embeddings, presence)))

    @property
    def lexical(self) -> tuple[np.ndarray, np.ndarray] | None:
        if self.idf is None or self.lexical_weight is None:
            return None
        return self.idf, self.lexical_weight


def train_heads(
    embeddings: np.ndarray, labels: np.ndarray, categories: Sequence[str], *, seed: int = 0
) -> Heads:
    """Fit each head on the rows whose label for it is known (0/1); C by 5-fold ROC-AUC."""
    import warnings

    from sklearn.linear_model import LogisticRegressionCV

    warnings.filterwarnings("ignore", category=FutureWarning, module="sklearn")
    weights, biases, chosen = [], [], {}
    for column, category in enumerate(categories):
        known = labels[:, column] >= 0
        target = labels[known, column]
        if target.min() == target.max():
            raise ValueError(f"category {category!r} has one class only in training data")
        model = LogisticRegressionCV(
            Cs=list(REGULARISATION_GRID),
            cv=5,
            scoring="roc_auc",
            max_iter=2000,
            random_state=seed,
        )
        model.fit(embeddings[known], target)
        weights.append(model.coef_[0].astype(np.float32))
        biases.append(np.float32(model.intercept_[0]))
        chosen[category] = float(model.C_[0])
    return Heads(tuple(categories), np.stack(weights), np.array(biases, np.float32), chosen)


def blend(
    embedding_logits: np.ndarray,
    lexical_logits: np.ndarray,
    labels: np.ndarray,
    categories: Sequence[str],
) -> dict[str, tuple[float, float, float]]:
    """Per category ``(a, b, c)`` of ``logit = a * embedding_logit + b * lexical_logit + c``,
    a two-feature logistic regression on the rows whose label is known (validation rows)."""
    from sklearn.linear_model import LogisticRegression

    out: dict[str, tuple[float, float, float]] = {}
    for column, category in enumerate(categories):
        known = labels[:, column] >= 0
        target = labels[known, column]
        if known.sum() < 20 or target.min() == target.max():
            out[category] = (1.0, 1.0, 0.0)  # too little to fit: plain sum
            continue
        features = np.stack([embedding_logits[known, column], lexical_logits[known, column]], 1)
        model = LogisticRegression(C=1.0, max_iter=1000).fit(features, target)
        a, b = (max(float(w), 0.0) for w in model.coef_[0])  # a branch never counts against
        out[category] = (a, b, float(model.intercept_[0]))
    return out


def fold(
    embedding: Heads,
    lexical: Any,  # training.lexical.LexicalHeads
    weights: dict[str, tuple[float, float, float]],
) -> Heads:
    """One ``Heads`` with both branches and the blend folded into their weights."""
    a = np.array([weights[c][0] for c in embedding.categories], np.float32)
    b = np.array([weights[c][1] for c in embedding.categories], np.float32)
    c = np.array([weights[c][2] for c in embedding.categories], np.float32)
    return Heads(
        embedding.categories,
        (embedding.weight * a[:, None]).astype(np.float32),
        (a * embedding.bias + b * lexical.bias + c).astype(np.float32),
        embedding.regularisation,
        lexical.idf.astype(np.float32),
        (lexical.weight * b[:, None]).astype(np.float32),
    )


def save_heads(path: Any, heads: Heads) -> None:
    """``heads.npz``: weight, bias, categories, and idf + lexical_weight with a lexical branch."""
    arrays: dict[str, np.ndarray] = {
        "weight": heads.weight,
        "bias": heads.bias,
        "categories": np.array(heads.categories),
    }
    if heads.lexical is not None:
        arrays["idf"], arrays["lexical_weight"] = heads.lexical
    np.savez(path, **arrays)  # type: ignore[arg-type]


def load_heads(path: str) -> Heads:
    """Heads saved next to a built model (``heads.npz``)."""
    data = np.load(path)
    lexical = "lexical_weight" in data.files
    return Heads(
        tuple(str(c) for c in data["categories"]),
        data["weight"],
        data["bias"],
        {},
        data["idf"] if lexical else None,
        data["lexical_weight"] if lexical else None,
    )
