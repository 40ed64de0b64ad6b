"""The user's history in the decision: a repeat offender's flag thresholds are lower.

Pure: the worker reads the counts (``db.user_history``) and hands them in.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from policy.model import CategoryThresholds, Policy

REPEAT_OFFENDER = "repeat_offender"


@dataclass(frozen=True, slots=True)
class UserFeatures:
    """What the worker knows of a user's recent outcomes (within the rule's window)."""

    window_days: int
    decisions: int
    flags: int
    removals: int
    confirmed_violations: int

    @property
    def violations(self) -> int:
        """Removals and human-confirmed violations (a removed item confirmed counts twice at
        most: the rule's threshold is set with that in mind)."""
        return self.removals + self.confirmed_violations


def apply_user_history(policy: Policy, features: UserFeatures | None) -> tuple[Policy, list[str]]:
    """The policy to decide with, and the user features that changed it (names)."""
    rule = policy.user_history
    if rule is None or features is None:
        return policy, []
    if features.violations < rule.repeat_offender_violations:
        return policy, []
    factor = rule.flag_threshold_factor
    lowered = {
        category: CategoryThresholds(flag=round(limits.flag * factor, 6), remove=limits.remove)
        for category, limits in policy.thresholds.items()
    }
    return replace(policy, thresholds=lowered), [REPEAT_OFFENDER]


def describe(features: UserFeatures, applied: list[str]) -> dict[str, Any]:
    """What a result and its stored row say about the user features."""
    return {
        "window_days": features.window_days,
        "decisions": features.decisions,
        "flags": features.flags,
        "removals": features.removals,
        "confirmed_violations": features.confirmed_violations,
        "applied": list(applied),
    }
