"""The one fixed split of every labelled row: evaluation / validation / train.

A row's split is a pure function of its normalised text (and, for sources that ship their own
test file, of that file): ``sha256(split_key(text))``'s first two bytes, read as a number in
[0, 65536), fall into evaluation (the first 10%), validation (the next 10%) or train. Nothing
else (row order, other rows, the seed, the subsample) moves a row between splits, so figures
reported on ``evaluation`` are never trained or tuned on. ``tests/training/test_split.py``
pins the split of known texts: changing this file changes those figures, so don't.
"""

from __future__ import annotations

import hashlib
import unicodedata
from typing import Final, Literal

Split = Literal["evaluation", "validation", "train"]
EVALUATION: Final = "evaluation"
VALIDATION: Final = "validation"
TRAIN: Final = "train"
SPLITS: tuple[Split, ...] = (EVALUATION, VALIDATION, TRAIN)

EVALUATION_PERCENT = 10
VALIDATION_PERCENT = 10
_BUCKETS = 65536


def split_key(text: str) -> str:
    """The text a split is hashed from: NFKC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def split_of(text: str) -> Split:
    """evaluation (10%), validation (10%) or train (80%), by sha256 of ``split_key(text)``."""
    digest = hashlib.sha256(split_key(text).encode("utf-8")).digest()
    bucket = int.from_bytes(digest[:2], "big")
    if bucket * 100 < EVALUATION_PERCENT * _BUCKETS:
        return EVALUATION
    if bucket * 100 < (EVALUATION_PERCENT + VALIDATION_PERCENT) * _BUCKETS:
        return VALIDATION
    return TRAIN
