"""Observations as arrays, one row each in ``assigned_at`` order, and their per-unit counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

from experiments.outcomes import ArmPlan, Observation
from experiments.units import COMPONENTS, LATENCY_SUM, POSTS, REVIEWED, STRATA, VIOLATIONS, Floats
from modq.errors import ExperimentError

DECISIONS = frozenset(STRATA)
ACTIONED = frozenset({"flag", "remove"})
Mask = NDArray[np.bool_]
Indices = NDArray[np.intp]


@dataclass(frozen=True, slots=True)
class Columns:
    """All observations as arrays, in ``assigned_at`` order."""

    arm: Indices
    stratum: Indices  # 0 allow, 1 flag, 2 remove
    reviewed: Mask
    violation: Mask  # False where not reviewed
    latency_ms: Floats
    unit: Indices  # the randomisation unit, as a code shared by every arm
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
        keys = [o.unit or f"content:{o.content_id}" for o in ordered]
        _, unit = np.unique(np.array(keys, dtype=object), return_inverse=True)
        return cls(
            arm=np.array([index[o.variant] for o in ordered], dtype=np.intp),
            stratum=np.array([STRATA.index(o.decision) for o in ordered], dtype=np.intp),
            reviewed=np.array([o.violation is not None for o in ordered], dtype=bool),
            violation=np.array([o.violation is True for o in ordered], dtype=bool),
            latency_ms=np.array([o.latency_ms for o in ordered], dtype=np.float64),
            unit=unit.astype(np.intp).reshape(-1),
            content_ids=tuple(o.content_id for o in ordered),
            at=tuple(o.assigned_at for o in ordered),
        )

    def __len__(self) -> int:
        return len(self.at)

    @property
    def units(self) -> int:
        return int(self.unit.max()) + 1 if len(self.unit) else 0

    def unit_counts(self, arm: int, rows: Mask) -> Floats:
        """Counts per unit ``(units, COMPONENTS)`` of ``arm`` over ``rows``; units with no
        post in it are all zero."""
        mine = rows & (self.arm == arm)
        codes, size = self.unit[mine], self.units
        counts = np.zeros((size, COMPONENTS))
        stratum = self.stratum[mine]
        for s in range(len(STRATA)):
            here = stratum == s
            counts[:, POSTS + s] = np.bincount(codes[here], minlength=size)
            seen = here & self.reviewed[mine]
            counts[:, REVIEWED + s] = np.bincount(codes[seen], minlength=size)
            bad = seen & self.violation[mine]
            counts[:, VIOLATIONS + s] = np.bincount(codes[bad], minlength=size)
        counts[:, LATENCY_SUM] = np.bincount(codes, weights=self.latency_ms[mine], minlength=size)
        return counts
