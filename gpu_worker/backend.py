"""The backend contract: token ids in, per-category scores out, one row per input."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gpu_worker.manifest import ModelManifest
from gpu_worker.windows import TextScores, TextWindows, WindowPlanner, aggregate, window_texts
from modq.errors import ModelUnavailable

if TYPE_CHECKING:
    from tokenizers import Tokenizer

TokenIds = list[int]


class Backend(ABC):
    """A loaded model. Subclasses implement ``tokenize`` and ``_run``; ``run`` counts calls."""

    def __init__(self, manifest: ModelManifest) -> None:
        self.manifest = manifest
        self.model_calls = 0  # batches run through the model
        self.texts_scored = 0  # rows run through the model (windows: gpu_worker.windows)
        self._count_lock = threading.Lock()
        self._planner: WindowPlanner | None = None
        self._planner_lock = threading.Lock()

    @property
    def categories(self) -> tuple[str, ...]:
        return self.manifest.categories

    @property
    @abstractmethod
    def device(self) -> str:
        """Where the model really runs, read from the runtime (e.g. 'cpu', 'cuda')."""

    @abstractmethod
    def tokenize(self, texts: Sequence[str]) -> list[TokenIds]:
        """Token ids per text, truncated to the model's limit, unpadded."""

    def text_tokenizer(self) -> Tokenizer | None:
        """The ``tokenizers`` tokenizer ``tokenize`` uses, if any: windows need its offsets.
        A backend without one scores every text as one window."""
        return None

    def windows(self, texts: Sequence[str]) -> list[TextWindows]:
        """Each text's windows (``gpu_worker.windows``)."""
        tokenizer = self.text_tokenizer()
        if tokenizer is None:
            return [TextWindows.whole(t) for t in texts]
        if self._planner is None:
            with self._planner_lock:
                if self._planner is None:
                    self._planner = WindowPlanner(tokenizer, self.manifest.max_length_tokens)
        return self._planner.plan(texts)

    @abstractmethod
    def _run(self, token_ids: Sequence[TokenIds]) -> np.ndarray:
        """Scores (len(token_ids), len(categories)); padding is the backend's business."""

    def run(self, token_ids: Sequence[TokenIds]) -> np.ndarray:
        scores = self._run(token_ids)
        if scores.shape != (len(token_ids), len(self.categories)):
            raise RuntimeError(
                f"backend returned scores of shape {scores.shape} for {len(token_ids)} inputs "
                f"and {len(self.categories)} categories"
            )
        with self._count_lock:
            self.model_calls += 1
            self.texts_scored += len(token_ids)
        return scores

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """Windowed scores in one call (no batching policy): for tools and tests."""
        return self.score_windows(texts).scores

    def score_windows(self, texts: Sequence[str], batch_size: int = 32) -> TextScores:
        """Every text's windows run in length-sorted batches of ``batch_size``, aggregated
        (scores, spans)."""
        plans = self.windows(texts)
        token_ids = self.tokenize(window_texts(texts, plans))
        scores = np.zeros((len(token_ids), len(self.categories)), np.float32)
        order = sorted(range(len(token_ids)), key=lambda i: len(token_ids[i]))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            scores[rows] = self.run([token_ids[i] for i in rows])
        return aggregate(scores, plans)


def pad_batch(token_ids: Sequence[TokenIds], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Dynamic padding: (ids, attention_mask) padded to the longest row only."""
    longest = max(len(row) for row in token_ids)
    ids = np.full((len(token_ids), longest), pad_id, dtype=np.int64)
    mask = np.zeros((len(token_ids), longest), dtype=np.int64)
    for i, row in enumerate(token_ids):
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return ids, mask


def open_tokenizer(path: Path, max_length_tokens: int) -> tuple[Tokenizer, int]:
    """A fast tokenizer from ``tokenizer.json``, truncating, unpadded; and its pad id."""
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises plain Exception on bad files
        raise ModelUnavailable(f"cannot load tokenizer {path}: {exc}") from exc
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_length_tokens)
    pad = tokenizer.token_to_id("[PAD]")
    return tokenizer, 0 if pad is None else pad
