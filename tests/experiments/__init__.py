"""Simulated experiments for the analysis and report tests (seeded, no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from experiments.analysis import ArmPlan, Observation

START = datetime(2025, 3, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Arm:
    """A simulated live arm: ``precision`` is P(violation | actioned)."""

    name: str
    count: int
    precision: float = 0.7
    action_rate: float = 0.3
    latency_ms: float = 50.0
    weight: float = 0.5


def simulate(
    rng: np.random.Generator,
    arms: Sequence[Arm],
    *,
    review_allowed: float = 0.2,  # share of allowed content a reviewer looks at
    missed_violations: float = 0.05,  # violations among allowed content
    latency_sd_ms: float = 15.0,
) -> tuple[list[Observation], list[ArmPlan]]:
    """Exactly ``arm.count`` observations per arm, interleaved in random time order; every
    actioned item is reviewed, a share of allowed ones too."""
    labels = np.repeat(np.arange(len(arms)), [a.count for a in arms])
    order = rng.permutation(labels)
    observations = []
    for k, index in enumerate(order):
        arm = arms[index]
        actioned = rng.random() < arm.action_rate
        violation: bool | None
        if actioned:
            violation = bool(rng.random() < arm.precision)
        elif rng.random() < review_allowed:
            violation = bool(rng.random() < missed_violations)
        else:
            violation = None
        observations.append(
            Observation(
                variant=arm.name,
                shadow=False,
                content_id=f"c{k}",
                decision=("remove" if rng.random() < 0.3 else "flag") if actioned else "allow",
                latency_ms=float(rng.normal(arm.latency_ms, latency_sd_ms)),
                assigned_at=START + timedelta(seconds=k),
                violation=violation,
            )
        )
    return observations, [ArmPlan(a.name, a.weight, False) for a in arms]


def shadow_of(
    rng: np.random.Generator,
    observations: Sequence[Observation],
    control: str,
    *,
    name: str = "shadow",
    extra_action_rate: float = 0.0,
) -> list[Observation]:
    """A shadow arm scoring the control's content: the same decisions, and it also flags
    ``extra_action_rate`` of what the control allowed."""
    shadow = []
    for o in observations:
        if o.variant != control:
            continue
        decision = o.decision
        if decision == "allow" and rng.random() < extra_action_rate:
            decision = "flag"
        shadow.append(
            Observation(
                variant=name,
                shadow=True,
                content_id=o.content_id,
                decision=decision,
                latency_ms=o.latency_ms + 5.0,
                assigned_at=o.assigned_at + timedelta(milliseconds=500),
                violation=o.violation,
            )
        )
    return shadow


def by_user(
    rng: np.random.Generator,
    arms: Sequence[Arm],
    *,
    max_posts: int = 20,
    icc: float = 0.16,
) -> tuple[list[Observation], list[ArmPlan]]:
    """``arm.count`` users per arm, each with 1..``max_posts`` posts whose action and violation
    propensities share a per-user beta effect of intra-class correlation ``icc``; every
    actioned post and a fifth of allowed ones are reviewed."""
    concentration = (1 - icc) / icc
    rows = []
    for index, arm in enumerate(arms):
        for user in range(arm.count):
            act = rng.beta(arm.action_rate * concentration, (1 - arm.action_rate) * concentration)
            bad = rng.beta(arm.precision * concentration, (1 - arm.precision) * concentration)
            for post in range(int(rng.integers(1, max_posts + 1))):
                rows.append((index, f"u{index}-{user}", f"u{index}-{user}-{post}", act, bad))
    observations = []
    for k, position in enumerate(rng.permutation(len(rows))):
        index, user, content, act, bad = rows[position]
        actioned = rng.random() < act
        violation = (
            bool(rng.random() < bad)
            if actioned
            else (bool(rng.random() < 0.05) if rng.random() < 0.2 else None)
        )
        observations.append(
            Observation(
                variant=arms[index].name,
                shadow=False,
                content_id=content,
                decision=("remove" if rng.random() < 0.3 else "flag") if actioned else "allow",
                latency_ms=float(rng.normal(arms[index].latency_ms, 15.0)),
                assigned_at=START + timedelta(seconds=k),
                violation=violation,
                unit=f"user:{user}",
            )
        )
    return observations, [ArmPlan(a.name, a.weight, False) for a in arms]
