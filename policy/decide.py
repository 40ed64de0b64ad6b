"""scores + policy → decision with reasons."""

from __future__ import annotations

from dataclasses import dataclass

from modq.schemas import Decision, Reason, Scores
from policy.model import Policy

_SEVERITY = {Decision.ALLOW: 0, Decision.FLAG: 1, Decision.REMOVE: 2}


@dataclass(frozen=True, slots=True)
class PolicyOutcome:
    decision: Decision
    reasons: list[Reason]
    unscored_categories: list[str]  # in the policy, but the model gives no score for them


def decide(scores: Scores, policy: Policy) -> PolicyOutcome:
    """Apply thresholds (a score AT a threshold trips it). A category the model does not score
    is reported in ``unscored_categories``, never read as zero."""
    reasons: list[Reason] = []
    unscored: list[str] = []
    decision = Decision.ALLOW
    for category, limits in policy.thresholds.items():
        score = scores.get(category)
        if score is None:
            unscored.append(category)
            continue
        if score >= limits.remove:
            action, threshold = Decision.REMOVE, limits.remove
        elif score >= limits.flag:
            action, threshold = Decision.FLAG, limits.flag
        else:
            continue
        reasons.append(Reason(category, float(score), threshold, action))
        if _SEVERITY[action] > _SEVERITY[decision]:
            decision = action
    reasons.sort(key=lambda r: (-_SEVERITY[r.action], -r.score))
    return PolicyOutcome(decision, reasons, unscored)
