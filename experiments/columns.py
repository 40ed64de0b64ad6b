"""Observations as arrays, one row each in ``assigned_at`` order: what the analysis works on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

from experiments.outcomes import ArmPlan, Observation
from experiments.stats import Floats, Mask
from modq.errors import ExperimentError

DECISIONS = frozenset({"allow", "flag", "remove"})
ACTIONED = frozenset({"flag", "remove"})


@dataclass(frozen=True, slots=True)
class Columns:
    """All observations as arrays, in ``assigned_at`` order."""

    arm: NDArray[np.intp]
    actioned: Mask
    flagged: Mask
    removed: Mask
    reviewed: Mask
    violation: Mask  # False where not reviewed
    latency_ms: Floats
    content_ids: tuple[str, ...]
    at: tuple[datetime, ...]

    @classmethod
    def build(cls, observations: Sequence[Observation], plans: Sequence[ArmPlan]) -> Columns:
        index = {plan.name: i for i, plan in enumerate(plans)}
        ordered = sorted(observations, key=lambda o: o.assigned_at)
        for o in ordered:
            if o.variant not in index:
                raise ExperimentError(f"observation for unknown variant {o.variant!r}")
            if o.decision not in DECISIONS:
                raise ExperimentError(f"unknown decision {o.decision!r} for {o.content_id!r}")
        decision = np.array([o.decision for o in ordered], dtype=object)
        return cls(
            arm=np.array([index[o.variant] for o in ordered], dtype=np.intp),
            actioned=decision != "allow",
            flagged=decision == "flag",
            removed=decision == "remove",
            reviewed=np.array([o.violation is not None for o in ordered], dtype=bool),
            violation=np.array([o.violation is True for o in ordered], dtype=bool),
            latency_ms=np.array([o.latency_ms for o in ordered], dtype=np.float64),
            content_ids=tuple(o.content_id for o in ordered),
            at=tuple(o.assigned_at for o in ordered),
        )

    def trials_and_successes(self, metric: str) -> tuple[Mask, Mask]:
        everyone = np.ones_like(self.actioned)
        return {
            "action_rate": (everyone, self.actioned),
            "remove_rate": (everyone, self.removed),
            "precision": (self.actioned & self.reviewed, self.violation),
            "recall": (self.reviewed & self.violation, self.actioned),
        }[metric]
