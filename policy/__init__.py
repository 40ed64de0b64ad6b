"""Versioned thresholds per category → allow | flag | remove, with reasons. Pure: no I/O but
reading the policy file it is given."""

from policy.decide import PolicyOutcome, decide
from policy.loader import load_policy, load_policy_version, parse_policy
from policy.model import Calibration, CategoryThresholds, Policy, UserHistoryRule
from policy.user_history import UserFeatures, apply_user_history

__all__ = [
    "Calibration",
    "CategoryThresholds",
    "Policy",
    "PolicyOutcome",
    "UserFeatures",
    "UserHistoryRule",
    "apply_user_history",
    "decide",
    "load_policy",
    "load_policy_version",
    "parse_policy",
]
