"""The audit sample of allowed content: random with respect to content, stable, sized."""

from __future__ import annotations

import pytest

from experiments.audit import audit_sample, in_audit_sample
from modq.errors import ExperimentError


def test_the_audit_sample_is_stable_sized_and_per_experiment() -> None:
    allowed = [f"c{i}" for i in range(20_000)]
    first = audit_sample("exp-1", allowed, 0.05)
    assert first == audit_sample("exp-1", reversed(allowed), 0.05)  # same on every run
    assert 900 < len(first) < 1100  # binomial(20000, 0.05): sd 31
    other = audit_sample("exp-2", allowed, 0.05)
    assert len(set(first) & set(other)) < 100  # experiments draw independently
    assert set(audit_sample("exp-1", allowed, 0.1)) >= set(first)  # a larger share nests
    assert all(in_audit_sample("exp-1", c, 1.0) for c in allowed[:10])
    with pytest.raises(ExperimentError):
        audit_sample("exp-1", allowed, 0.0)
