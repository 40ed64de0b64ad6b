"""Versioned thresholds per category → allow | flag | remove, with reasons. Pure: no I/O but
reading the policy file it is given."""

from policy.decide import PolicyOutcome, decide
from policy.loader import load_policy, load_policy_version, parse_policy
from policy.model import CategoryThresholds, Policy

__all__ = [
    "CategoryThresholds",
    "Policy",
    "PolicyOutcome",
    "decide",
    "load_policy",
    "load_policy_version",
    "parse_policy",
]
