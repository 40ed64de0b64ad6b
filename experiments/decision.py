"""The decision rule: a declared primary metric, direction and guardrails in; ship / don't
ship / keep running / untrusted out, with the reason. Pure.

- Primary: the challenger ships only if its primary metric moved the declared way with
  p < alpha after Holm's correction across every challenger (shadows included).
- Guardrails: non-inferiority. Each guardrail's interval for the relative lift must stay
  within its margin on the harmful side (e.g. p95 latency at most +10%). Ship needs all of
  them (an intersection-union test: no correction needed); one whose whole interval lies past
  the margin is breached.
- When: with a planned size the data are frozen when every live arm reaches it and judged
  once, fixed-horizon; before that the verdict is "keep running". Without a plan the
  always-valid p and confidence sequence decide, at any look.

A false positive of the rule is "ship" for a challenger no better than control: at most
alpha/2 (the interval is two-sided), and "a significant primary difference in either
direction" at most alpha.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from experiments.units import BETTER_WHEN_HIGHER, METRICS
from modq.errors import ExperimentError


class Verdict(StrEnum):
    SHIP = "ship"
    DONT_SHIP = "don't ship"
    KEEP_RUNNING = "keep running"
    UNTRUSTED = "untrusted"


class Direction(StrEnum):
    INCREASE = "increase"
    DECREASE = "decrease"


class Mode(StrEnum):
    WAITING = "waiting for the planned size"
    FIXED = "fixed horizon, frozen at the planned size"
    SEQUENTIAL = "always-valid (no planned size)"


@dataclass(frozen=True, slots=True)
class Guardrail:
    """``metric`` may get worse by at most ``margin`` (relative to control: 0.1 = 10%)."""

    metric: str
    margin: float
    direction: Direction  # the good direction; harm is the other way

    @classmethod
    def of(cls, metric: str, margin: float, direction: str | None = None) -> Guardrail:
        _check_metric(metric, "guardrail")
        if not 0 <= margin < 10:
            raise ExperimentError(f"guardrail {metric}: margin must be in [0, 10), got {margin}")
        return cls(metric, float(margin), _direction(metric, direction, "guardrail"))


DEFAULT_GUARDRAILS = (
    Guardrail("precision", 0.05, Direction.INCREASE),
    Guardrail("latency_p95_ms", 0.25, Direction.DECREASE),
)


@dataclass(frozen=True, slots=True)
class DecisionRule:
    """What an experiment declares before it starts."""

    primary: str = "violations_actioned_per_1k"
    direction: Direction = Direction.INCREASE
    guardrails: tuple[Guardrail, ...] = DEFAULT_GUARDRAILS
    secondary: tuple[str, ...] = ()  # default: every other metric

    @classmethod
    def of(
        cls,
        primary: str,
        direction: str | None = None,
        guardrails: Sequence[Guardrail] | None = None,
    ) -> DecisionRule:
        _check_metric(primary, "primary")
        chosen = _direction(primary, direction, "primary")
        rails = tuple(guardrails) if guardrails is not None else DEFAULT_GUARDRAILS
        rails = tuple(g for g in rails if g.metric != primary)
        return cls(primary, chosen, rails)

    def secondary_metrics(self) -> tuple[str, ...]:
        taken = {self.primary, *(g.metric for g in self.guardrails)}
        return self.secondary or tuple(m for m in METRICS if m not in taken)

    def to_dict(self) -> dict[str, Any]:
        return {
            "primary": self.primary,
            "direction": self.direction.value,
            "guardrails": [
                {"metric": g.metric, "margin": g.margin, "direction": g.direction.value}
                for g in self.guardrails
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DecisionRule:
        rails = [
            Guardrail.of(g["metric"], g["margin"], g.get("direction")) for g in data["guardrails"]
        ]
        return cls.of(data["primary"], data.get("direction"), rails)

    def describe(self) -> str:
        rails = ", ".join(
            f"{g.metric} {'−' if g.direction is Direction.INCREASE else '+'}{g.margin:.0%}"
            for g in self.guardrails
        )
        return f"{self.primary} must {self.direction.value}; guardrails: {rails or 'none'}"


def _check_metric(metric: str, role: str) -> None:
    if metric not in METRICS:
        raise ExperimentError(f"{role} metric must be one of {', '.join(METRICS)}, got {metric!r}")


def _direction(metric: str, given: str | None, role: str) -> Direction:
    if given is not None:
        try:
            return Direction(given)
        except ValueError as exc:
            raise ExperimentError(f"direction must be increase or decrease, got {given!r}") from exc
    if metric not in BETTER_WHEN_HIGHER:
        raise ExperimentError(f"{role} {metric}: declare its direction (increase or decrease)")
    return Direction.INCREASE if BETTER_WHEN_HIGHER[metric] else Direction.DECREASE


@dataclass(frozen=True, slots=True)
class Evidence:
    """One metric, challenger against control, as the rule reads it."""

    metric: str
    valid: bool
    difference: float
    p_value: float  # the deciding p (fixed horizon or always-valid), before correction
    lift_low: float
    lift_high: float


@dataclass(frozen=True, slots=True)
class ChallengerVerdict:
    challenger: str
    verdict: Verdict
    reason: str
    primary_p_adjusted: float | None  # Holm across challengers


def judge(
    rule: DecisionRule,
    challenger: str,
    primary: Evidence,
    adjusted_p: float,
    guardrails: Mapping[str, Evidence],
    mode: Mode,
    alpha: float,
) -> ChallengerVerdict:
    """One challenger's verdict under ``rule`` (Holm-adjusted primary p given)."""

    def verdict(kind: Verdict, reason: str) -> ChallengerVerdict:
        return ChallengerVerdict(challenger, kind, reason, adjusted_p if primary.valid else None)

    if mode is Mode.WAITING:
        return verdict(Verdict.KEEP_RUNNING, "the planned size is not reached")
    if not primary.valid:
        return verdict(Verdict.KEEP_RUNNING, f"too few units or events for {rule.primary} yet")
    breached, unproven = _guardrail_state(rule, guardrails)
    significant = adjusted_p < alpha
    better = (primary.difference > 0) == (rule.direction is Direction.INCREASE)
    where = f"{rule.primary} {'better' if better else 'worse'} (Holm p = {adjusted_p:.3g})"
    if significant and not better:
        return verdict(Verdict.DONT_SHIP, f"{where}: significantly worse")
    if breached:
        return verdict(Verdict.DONT_SHIP, f"guardrail breached: {', '.join(breached)}")
    if significant and not unproven:
        return verdict(Verdict.SHIP, f"{where}; every guardrail within its margin")
    if mode is Mode.SEQUENTIAL:
        why = (
            f"guardrails not yet shown within margin: {', '.join(unproven)}"
            if significant
            else (
                f"no significant change in {rule.primary} yet (always-valid p = {adjusted_p:.3g})"
            )
        )
        return verdict(Verdict.KEEP_RUNNING, why)
    if significant:
        return verdict(Verdict.DONT_SHIP, f"{where}, but not within margin: {', '.join(unproven)}")
    return verdict(
        Verdict.DONT_SHIP,
        f"no significant improvement in {rule.primary} at the planned size"
        f" (Holm p = {adjusted_p:.3g})",
    )


def _guardrail_state(
    rule: DecisionRule, evidence: Mapping[str, Evidence]
) -> tuple[list[str], list[str]]:
    breached, unproven = [], []
    for rail in rule.guardrails:
        seen = evidence.get(rail.metric)
        if seen is None or not seen.valid:
            unproven.append(f"{rail.metric} (too little data)")
            continue
        if rail.direction is Direction.INCREASE:  # harm is a fall
            worst, best = -seen.lift_low, -seen.lift_high
        else:
            worst, best = seen.lift_high, seen.lift_low
        if best > rail.margin:
            breached.append(
                f"{rail.metric} worse by at least {best:.1%} (margin {rail.margin:.0%})"
            )
        elif not worst < rail.margin:
            unproven.append(f"{rail.metric} (up to {worst:.1%} worse, margin {rail.margin:.0%})")
    return breached, unproven


def overall(verdicts: Sequence[ChallengerVerdict], srm_alarm: bool) -> tuple[Verdict, str]:
    """The experiment's verdict from its challengers'."""
    if srm_alarm:
        return Verdict.UNTRUSTED, "sample-ratio mismatch: the split is broken, nothing is trusted"
    if not verdicts:
        return Verdict.KEEP_RUNNING, "nothing to compare yet"
    for kind in (Verdict.SHIP, Verdict.KEEP_RUNNING):
        chosen = [v for v in verdicts if v.verdict is kind]
        if chosen:
            return kind, "; ".join(f"{v.challenger}: {v.reason}" for v in chosen)
    return Verdict.DONT_SHIP, "; ".join(f"{v.challenger}: {v.reason}" for v in verdicts)
