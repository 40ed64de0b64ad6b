"""One logistic-regression head per category on frozen sentence embeddings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

REGULARISATION_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)


@dataclass(frozen=True, slots=True)
class Heads:
    categories: tuple[str, ...]
    weight: np.ndarray  # (n_categories, hidden)
    bias: np.ndarray  # (n_categories,)
    regularisation: dict[str, float]

    def predict(self, embeddings: np.ndarray) -> np.ndarray:
        logits = embeddings @ self.weight.T + self.bias
        return 1.0 / (1.0 + np.exp(-logits))


def train_heads(
    embeddings: np.ndarray, labels: np.ndarray, categories: Sequence[str], *, seed: int = 0
) -> Heads:
    """Fit each head on the rows whose label for it is known (0/1); C by 5-fold ROC-AUC."""
    from sklearn.linear_model import LogisticRegressionCV

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


def load_heads(path: str) -> Heads:
    """Heads saved next to a built model (``heads.npz``)."""
    data = np.load(path)
    return Heads(tuple(str(c) for c in data["categories"]), data["weight"], data["bias"], {})
