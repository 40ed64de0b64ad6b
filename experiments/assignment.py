"""Sticky, deterministic assignment: a stable hash of (experiment id, unit) picks the variant.

The same unit gets the same variant in every process and on every run while the experiment's
weights stand (they are fixed once it starts). The hash is sha256, not Python's ``hash()``
(salted per process), so producers, workers and analysis all agree.
"""

from __future__ import annotations

import hashlib

from modq.experiment import AssignmentUnit, Experiment, Variant

BUCKETS = 10_000  # weights resolve to 0.01 %


def bucket_of(experiment_id: str, unit: str) -> int:
    """The unit's bucket in ``[0, BUCKETS)`` for this experiment (independent across
    experiments: the experiment id salts the hash)."""
    digest = hashlib.sha256(f"{experiment_id}\x00{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def unit_of(experiment: Experiment, content_id: str, user_id: str | None) -> str:
    """The value assignment is keyed on; by user, content without a user falls back to its
    content id (it cannot be sticky to a user it does not have)."""
    if experiment.unit is AssignmentUnit.USER_ID and user_id is not None:
        return f"user:{user_id}"
    return f"content:{content_id}"


def assign(experiment: Experiment, unit: str) -> Variant:
    """The live variant ``unit`` gets: buckets are dealt to live variants by weight, in order."""
    bucket = bucket_of(experiment.id, unit)
    upper = 0.0
    live = experiment.live_variants
    for variant in live:
        upper += variant.weight * BUCKETS
        if bucket < round(upper):
            return variant
    return live[-1]  # weights sum to 1 within tolerance: rounding leaves the last bucket here
