"""A/B experiments as plain, validated data: variants, weights, unit of assignment, state.

Pure: no I/O. ``db.experiments`` stores these; ``experiments`` assigns and analyses them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from modq.errors import ExperimentError

WEIGHT_TOLERANCE = 1e-6
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


class ExperimentState(StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    STOPPED = "stopped"


class AssignmentUnit(StrEnum):
    """What stays on one variant: a piece of content, or everything a user posts."""

    CONTENT_ID = "content_id"
    USER_ID = "user_id"


@dataclass(frozen=True, slots=True)
class Variant:
    """One arm: a registry model (``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``) under a
    policy version, with its share of live traffic. A shadow variant takes no share: it scores
    every unit of the experiment on the bulk queue, and its result never reaches the caller."""

    name: str
    model_uri: str
    policy_version: str
    weight: float = 0.0
    shadow: bool = False


@dataclass(frozen=True, slots=True)
class Experiment:
    id: str
    variants: tuple[Variant, ...]
    unit: AssignmentUnit = AssignmentUnit.CONTENT_ID
    state: ExperimentState = ExperimentState.DRAFT
    description: str = ""
    planned_sample_size: int | None = None  # per live variant, before which no verdict
    alpha: float = 0.05
    created_by: str = ""
    created_at: datetime | None = None
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    stop_reason: str | None = None
    # primary metric, direction, guardrails (validated by experiments.decision); None: default
    decision_rule: Mapping[str, Any] | None = None
    forced_promotion: str | None = None  # why a variant was promoted without a "ship" verdict
    _live: tuple[Variant, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        validate_experiment(self)
        object.__setattr__(self, "_live", tuple(v for v in self.variants if not v.shadow))

    @property
    def live_variants(self) -> tuple[Variant, ...]:
        """The variants that answer callers, in order; the first is the control."""
        return self._live

    @property
    def shadow_variants(self) -> tuple[Variant, ...]:
        return tuple(v for v in self.variants if v.shadow)

    @property
    def control(self) -> Variant:
        return self._live[0]

    def variant(self, name: str) -> Variant:
        for variant in self.variants:
            if variant.name == name:
                return variant
        known = ", ".join(v.name for v in self.variants)
        raise ExperimentError(
            f"experiment {self.id!r} has no variant {name!r} (it has: {known})",
            experiment=self.id,
            variant=name,
        )


def validate_experiment(experiment: Experiment) -> None:
    """Raise ``ExperimentError`` on the first problem: names, weights, plan."""
    if not _NAME.match(experiment.id):
        raise ExperimentError(
            f"experiment id {experiment.id!r} must be 1-64 of a-z 0-9 _ . - "
            "(starting with a letter or digit)",
            field="id",
        )
    _validate_variants(experiment.variants)
    if experiment.planned_sample_size is not None and experiment.planned_sample_size < 1:
        raise ExperimentError("planned sample size must be at least 1", field="planned_sample_size")
    if not 0.0 < experiment.alpha < 1.0:
        raise ExperimentError(f"alpha must be in (0, 1), got {experiment.alpha}", field="alpha")


def _validate_variants(variants: Sequence[Variant]) -> None:
    if not variants:
        raise ExperimentError("an experiment needs variants", field="variants")
    names = [v.name for v in variants]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ExperimentError(f"variant names repeat: {', '.join(duplicates)}", field="variants")
    for variant in variants:
        if not _NAME.match(variant.name):
            raise ExperimentError(
                f"variant name {variant.name!r} must be 1-64 of a-z 0-9 _ . -", field="variants"
            )
        if not variant.model_uri.startswith("models:/"):
            raise ExperimentError(
                f"variant {variant.name!r}: model must be a registry URI "
                f"(models:/NAME@ALIAS or models:/NAME/VERSION), got {variant.model_uri!r}",
                field="variants",
            )
        if not variant.policy_version.strip():
            raise ExperimentError(f"variant {variant.name!r} needs a policy version")
        if not math.isfinite(variant.weight) or variant.weight < 0:
            raise ExperimentError(f"variant {variant.name!r}: weight must be ≥ 0")
        if variant.shadow and variant.weight != 0:
            raise ExperimentError(
                f"variant {variant.name!r} is a shadow: it takes no share of live traffic "
                "(weight 0)",
                field="variants",
            )
    live = [v for v in variants if not v.shadow]
    if not live:
        raise ExperimentError("an experiment needs at least one live (non-shadow) variant")
    if len(variants) < 2:
        raise ExperimentError("an experiment needs at least two variants to compare")
    total = sum(v.weight for v in live)
    if abs(total - 1.0) > WEIGHT_TOLERANCE:
        shares = ", ".join(f"{v.name}={v.weight:g}" for v in live)
        raise ExperimentError(
            f"live variant weights must sum to 1, they sum to {total:g} ({shares})",
            field="weights",
            total=total,
        )
    for variant in live:
        if variant.weight <= 0:
            raise ExperimentError(
                f"live variant {variant.name!r} has weight 0: make it a shadow or drop it",
                field="weights",
            )
