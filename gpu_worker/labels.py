"""A model's own labels mapped onto the canonical categories.

Every label is either mapped to a canonical category or explicitly ignored; anything else is a
``LabelMappingError``, never a silent zero. Several labels may map to one category: the
category's score is the largest of theirs. Output columns follow the canonical order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from modq.categories import CANONICAL_CATEGORIES
from modq.errors import LabelMappingError

# sigmoid: independent labels (multi-label); softmax: one label per text; none: the model
# already outputs probabilities
ACTIVATIONS = ("sigmoid", "softmax", "none")


@dataclass(frozen=True, slots=True)
class LabelMapping:
    """Model output column i is ``labels[i]``; ``label_to_category`` says where it goes."""

    labels: tuple[str, ...]
    label_to_category: Mapping[str, str]
    ignored: tuple[str, ...]
    activation: str

    @property
    def categories(self) -> tuple[str, ...]:
        """The mapped categories in canonical order: the scores' columns."""
        mapped = set(self.label_to_category.values())
        return tuple(c for c in CANONICAL_CATEGORIES if c in mapped)

    def columns(self) -> list[list[int]]:
        """For each category (in ``categories`` order), the model columns that feed it."""
        return [
            [i for i, label in enumerate(self.labels) if self.label_to_category.get(label) == c]
            for c in self.categories
        ]

    def apply(self, logits: np.ndarray) -> np.ndarray:
        """Reference implementation in numpy: activation, then max per category."""
        logits = np.asarray(logits, dtype=np.float64)
        if self.activation == "sigmoid":
            probs = 1.0 / (1.0 + np.exp(-logits))
        elif self.activation == "softmax":
            shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
            probs = shifted / shifted.sum(axis=1, keepdims=True)
        else:
            probs = logits
        return np.stack([probs[:, cols].max(axis=1) for cols in self.columns()], axis=1).astype(
            np.float32
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": list(self.labels),
            "label_to_category": dict(self.label_to_category),
            "ignored": list(self.ignored),
            "activation": self.activation,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabelMapping:
        try:
            return build_label_mapping(
                data["labels"], data["label_to_category"], data["ignored"], data["activation"]
            )
        except (KeyError, TypeError) as exc:
            raise LabelMappingError(f"incomplete label mapping in manifest: {exc}") from exc


def build_label_mapping(
    labels: Sequence[str],
    label_to_category: Mapping[str, str],
    ignored: Iterable[str] = (),
    activation: str = "sigmoid",
) -> LabelMapping:
    """Check that every label is mapped to a canonical category or ignored, exactly once."""
    labels = tuple(str(label) for label in labels)
    ignored = tuple(ignored)
    if not labels:
        raise LabelMappingError("the model declares no labels")
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise LabelMappingError(f"the model's labels are not unique: {duplicates}")
    if activation not in ACTIVATIONS:
        raise LabelMappingError(f"unknown activation {activation!r}; choose one of {ACTIVATIONS}")
    strangers = sorted((set(label_to_category) | set(ignored)) - set(labels))
    if strangers:
        raise LabelMappingError(
            f"the mapping names labels the model does not have: {strangers}; "
            f"the model's labels are {list(labels)}"
        )
    both = sorted(set(label_to_category) & set(ignored))
    if both:
        raise LabelMappingError(f"labels both mapped and ignored: {both}")
    unknown = {
        lab: cat for lab, cat in label_to_category.items() if cat not in CANONICAL_CATEGORIES
    }
    if unknown:
        raise LabelMappingError(
            f"unknown categories in the mapping {unknown}; "
            f"the canonical categories are {list(CANONICAL_CATEGORIES)}"
        )
    unmapped = [
        label for label in labels if label not in label_to_category and label not in ignored
    ]
    if unmapped:
        hint = " ".join(f"--map {label}=CATEGORY" for label in unmapped)
        raise LabelMappingError(
            f"model labels with no mapping: {unmapped}; map each to a canonical category "
            f"({hint}) or ignore it (--ignore LABEL)"
        )
    if not label_to_category:
        raise LabelMappingError("every label is ignored: the model would score no category")
    return LabelMapping(labels, dict(label_to_category), ignored, activation)


def parse_label_pairs(pairs: Iterable[str]) -> dict[str, str]:
    """``["toxic=harassment", ...]`` → ``{"toxic": "harassment"}`` (one category per label)."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        label, sep, category = pair.partition("=")
        label, category = label.strip(), category.strip()
        if not sep or not label or not category:
            raise LabelMappingError(f"bad mapping {pair!r}: write LABEL=CATEGORY")
        if label in mapping and mapping[label] != category:
            raise LabelMappingError(
                f"label {label!r} mapped twice ({mapping[label]!r} and {category!r})"
            )
        mapping[label] = category
    return mapping
