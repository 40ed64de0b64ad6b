"""`modq ab create` options, parsed and checked: variants and weights, the decision rule,
the planner."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modq.errors import ExperimentError


def pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    """``NAME=VALUE`` options as a dict (a repeated name is an error)."""
    pairs: dict[str, str] = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name.strip() or not rest.strip():
            raise ExperimentError(f"{what} must look like NAME=VALUE, got {value!r}")
        if name in pairs:
            raise ExperimentError(f"{what} for {name!r} given twice")
        pairs[name.strip()] = rest.strip()
    return pairs


def weights(values: tuple[str, ...], live: list[str]) -> dict[str, float]:
    given = pairs(values, "--weight")
    unknown = sorted(set(given) - set(live))
    if unknown:
        raise ExperimentError(f"--weight names no live variant: {', '.join(unknown)}")
    if not given:  # no weights: an even split
        return {name: 1.0 / len(live) for name in live}
    weights: dict[str, float] = {}
    for name in live:
        if name not in given:
            raise ExperimentError(f"--weight missing for live variant {name!r}")
        try:
            weights[name] = float(given[name])
        except ValueError as exc:
            raise ExperimentError(f"--weight {name}={given[name]!r} is not a number") from exc
    return weights


def decision_rule(
    primary: str | None, direction: str | None, guardrails: tuple[str, ...]
) -> dict[str, Any]:
    """The rule as stored: ``--guardrail METRIC=MARGIN[:increase|decrease]``, repeated (the
    margin is relative: 0.1 lets the metric worsen by 10%); ``--guardrail none`` for none."""
    from experiments.decision import DecisionRule, Guardrail

    rails: list[Guardrail] | None = None
    if guardrails:
        rails = []
        for text in guardrails:
            if text == "none":
                continue
            metric, sep, rest = text.partition("=")
            margin, _, way = rest.partition(":")
            try:
                value = float(margin)
            except ValueError as exc:
                raise ExperimentError(
                    f"--guardrail must look like METRIC=MARGIN, got {text!r}"
                ) from exc
            if not sep:
                raise ExperimentError(f"--guardrail must look like METRIC=MARGIN, got {text!r}")
            rails.append(Guardrail.of(metric.strip(), value, way.strip() or None))
    if primary is None:
        if direction is not None:
            raise ExperimentError("--direction goes with --primary")
        return DecisionRule.of(DecisionRule().primary, None, rails).to_dict()
    return DecisionRule.of(primary, direction, rails).to_dict()


@dataclass(frozen=True, slots=True)
class PlanOptions:
    mde: float | None
    baseline: float | None
    action_rate: float | None
    challenger_action_rate: float | None
    review_share: float
    max_posts: int
    icc: float
    power: float


def planned_size(
    given: int | None,
    options: PlanOptions,
    rule: dict[str, Any],
    weights: list[float],
    alpha: float,
) -> tuple[int | None, str | None]:
    """Units in the smallest live arm for the primary metric to move by ``--mde`` with
    ``--power``, every challenger tested at alpha / challengers; (size, a line saying how)."""
    o = options
    if o.mde is None and o.baseline is None:
        return given, None
    if given is not None:
        raise ExperimentError("give --planned-sample-size or --mde with --baseline, not both")
    if o.mde is None or o.baseline is None or o.action_rate is None:
        raise ExperimentError("--mde, --baseline and --action-rate go together")
    from experiments.planner import PlanInputs, plan

    challengers = len(weights) - 1
    rates = (o.action_rate, *([o.challenger_action_rate or o.action_rate] * challengers))
    inputs = PlanInputs(
        metric=rule["primary"],
        values=(o.baseline, *([o.baseline + o.mde] * challengers)),
        action_rates=rates,
        weights=tuple(weights),
        review_share=o.review_share,
        min_posts=1,
        max_posts=o.max_posts,
        icc=o.icc,
        alpha=alpha,
        power=o.power,
    )
    sized = plan(inputs)
    how = (
        f"planned {sized.units_smallest_arm} units in the smallest arm ({sized.units_total} in"
        f" all; design effect {max(sized.design_effect):.2f}; each test at alpha"
        f" {sized.alpha_per_test:.3g}; ~{sized.reviewed_items_per_arm[-1]:.0f} items measured"
        " in the last arm)"
    )
    return sized.units_smallest_arm, how
