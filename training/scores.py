"""A model's scores on the validation and evaluation rows, kept in its folder (``scores.npz``)
so thresholds can be calibrated and operating points computed without scoring again."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modq.errors import ModelUnavailable
from training.datasets import Example

SCORES_FILE = "scores.npz"


@dataclass(frozen=True, slots=True)
class ScoreSet:
    """Scores (rows x categories) of labelled rows; labels 1/0/-1 per category."""

    rows: Sequence[Example] | None  # None when read back from a file (texts are not kept)
    categories: tuple[str, ...]
    scores: np.ndarray
    labels: np.ndarray | None = None
    sources: np.ndarray | None = None

    def label_matrix(self) -> np.ndarray:
        if self.labels is not None:
            return self.labels
        assert self.rows is not None
        return np.array([[e.labels[c] for c in self.categories] for e in self.rows], np.int8)

    def source_array(self) -> np.ndarray:
        if self.sources is not None:
            return self.sources
        assert self.rows is not None
        return np.array([e.source for e in self.rows])

    def column(self, category: str) -> tuple[np.ndarray, np.ndarray]:
        """(scores, labels) of one category over the rows whose label is known."""
        index = self.categories.index(category)
        labels = self.label_matrix()[:, index]
        known = labels >= 0
        return self.scores[known, index].astype(np.float64), labels[known].astype(np.int64)


def save_scores(folder: Path, sets: Mapping[str, ScoreSet]) -> None:
    arrays: dict[str, np.ndarray] = {}
    for split, scored in sets.items():
        arrays[f"{split}_scores"] = scored.scores
        arrays[f"{split}_labels"] = scored.label_matrix()
        arrays[f"{split}_sources"] = scored.source_array()
        arrays[f"{split}_categories"] = np.array(scored.categories)
    np.savez_compressed(folder / SCORES_FILE, **arrays)  # type: ignore[arg-type]


def load_scores(folder: Path, split: str) -> ScoreSet:
    """One split's scores from a model folder (``ModelUnavailable`` if it has none)."""
    path = Path(folder) / SCORES_FILE
    try:
        with np.load(path) as data:
            return ScoreSet(
                rows=None,
                categories=tuple(str(c) for c in data[f"{split}_categories"]),
                scores=data[f"{split}_scores"],
                labels=data[f"{split}_labels"],
                sources=data[f"{split}_sources"],
            )
    except (OSError, KeyError, ValueError) as exc:
        raise ModelUnavailable(
            f"{folder} has no {split} scores ({SCORES_FILE}); it was not built by this "
            "version of `modq model build`"
        ) from exc
