"""Calibration of the decision rule by seeded simulation: A/A false-positive rates and the
power of planted effects, in every design the analysis must hold in.

``python -m experiments.calibration [--sims N] [--seed S]`` prints both tables. The tests in
``tests/experiments/test_calibration.py`` run the same designs with fewer simulations.

Each simulated experiment goes through the same code as a real one: per-unit counts
(``experiments.units``), the delta-method comparisons and the mSPRT
(``experiments.inference``), Holm across challengers and the decision rule
(``experiments.decision``); only the counts are drawn directly instead of read from SQL.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from experiments.comparisons import MIXING_SD
from experiments.decision import DecisionRule, Evidence, Mode, Verdict, judge
from experiments.inference import Estimate, Moments, always_valid, compare, fixed_horizon, holm
from experiments.planner import Plan, PlanInputs, plan, review_weighting_inflation
from experiments.simulation import ArmModel, Population, simulate
from experiments.units import Floats, Strata, metric_columns, strata_of

ALPHA = 0.05
LOOKS = 20  # always-valid looks over the experiment
REPORTS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)  # report times, as shares of the plan
_CHUNK_CELLS = 1_500_000  # experiments x units drawn at once (memory bound)


@dataclass(frozen=True, slots=True)
class Design:
    """An experiment layout: the population under H0 (A/A), the same with a planted effect,
    the primary metric and how the planner sees it."""

    name: str
    null: Population
    planted: Population
    metric: str
    direction: str
    plan_inputs: PlanInputs
    sequential: bool = False  # also judge without a plan, by the always-valid p
    reports: bool = False  # re-run the report up to 2x the plan


@dataclass(frozen=True, slots=True)
class Rates:
    """Outcomes over ``runs`` simulated experiments."""

    runs: int
    ship: int  # a "ship" verdict for some challenger
    significant: int  # a significant primary difference, either direction, some challenger
    naive: int = 0  # what the old analysis would have called (reports design: no freeze)

    def rate(self, count: int) -> float:
        return count / self.runs

    def upper(self, count: int) -> float:
        """One-sided 95% Clopper-Pearson upper bound."""
        from scipy.stats import beta

        return 1.0 if count == self.runs else float(beta.ppf(0.95, count + 1, self.runs - count))


def _arm(weight: float, **changes: object) -> ArmModel:
    return replace(ArmModel(weight=weight), **changes)  # type: ignore[arg-type]


def _precision_inputs(
    weights: tuple[float, ...], values: tuple[float, ...], **extra: object
) -> PlanInputs:
    return PlanInputs(
        metric="precision",
        values=values,
        action_rates=tuple(0.2 for _ in weights),
        weights=weights,
        **extra,  # type: ignore[arg-type]
    )


def designs() -> list[Design]:
    """The designs of issue 14, each with a planted effect the planner sizes."""
    base = ArmModel(weight=0.5, review_share=(0.1, 1.0, 1.0))
    better = replace(base, precision_flag=0.66, precision_remove=0.66)
    found: list[Design] = []
    found.append(
        Design(
            "50/50 by content",
            Population(arms=(base, base)),
            Population(arms=(base, better)),
            "precision",
            "increase",
            _precision_inputs((0.5, 0.5), (0.6, 0.66)),
            reports=False,
        )
    )
    for small in (0.10, 0.05):
        control = replace(base, weight=1 - small, review_share=(1.0, 1.0, 1.0))
        challenger = replace(control, weight=small)
        found.append(
            Design(
                f"{1 - small:.0%}/{small:.0%} split",
                Population(arms=(control, challenger)),
                Population(arms=(control, replace(challenger, remove_share=0.45))),
                "remove_rate",
                "increase",
                PlanInputs("remove_rate", (0.06, 0.09), (0.2, 0.2), (1 - small, small)),
                sequential=True,
            )
        )
    users = dict(min_posts=1, max_posts=20, icc=0.16, latency_unit_sd_ms=10.0)
    found.append(
        Design(
            "by user, ICC 0.16, 1-20 posts",
            Population(arms=(base, base), **users),  # type: ignore[arg-type]
            Population(arms=(base, better), **users),  # type: ignore[arg-type]
            "precision",
            "increase",
            _precision_inputs((0.5, 0.5), (0.6, 0.66), min_posts=1, max_posts=20, icc=0.16),
            sequential=True,
        )
    )
    quarter = replace(base, weight=0.25)
    best = replace(base, precision_flag=0.68, precision_remove=0.68)
    found.append(
        Design(
            "three challengers",
            Population(arms=(quarter,) * 4),
            Population(arms=(quarter, quarter, quarter, replace(best, weight=0.25))),
            "precision",
            "increase",
            _precision_inputs((0.25,) * 4, (0.6, 0.6, 0.6, 0.68)),
        )
    )
    found.append(
        Design(
            "reports up to 2x the plan",
            Population(arms=(base, base)),
            Population(arms=(base, better)),
            "precision",
            "increase",
            _precision_inputs((0.5, 0.5), (0.6, 0.66)),
            reports=True,
        )
    )
    # control reviews every action; the challenger only 10% of its removals. Flags and
    # removals differ in precision, so unweighted precision would be badly biased.
    shape = dict(precision_flag=0.4, precision_remove=0.9, remove_share=0.4)
    control = replace(base, review_share=(0.1, 1.0, 1.0), **shape)
    sparse = replace(control, review_share=(0.1, 1.0, 0.1))
    planted = replace(sparse, precision_flag=0.5)
    inflation = (1.0, review_weighting_inflation(0.5, 0.9, 0.4, 1.0, 0.1))
    found.append(
        Design(
            "unequal review coverage",
            Population(arms=(control, sparse)),
            Population(arms=(control, planted)),
            "precision",
            "increase",
            _precision_inputs((0.5, 0.5), (0.6, 0.66), variance_inflation=inflation),
        )
    )
    return found


def _strata_per_unit(counts: Floats, arm: np.ndarray, arms: int) -> Strata:
    """Each unit's review strata, from its arm's totals in its experiment."""
    totals = np.stack([np.where((arm == k)[..., None], counts, 0.0).sum(1) for k in range(arms)], 1)
    return strata_of(totals).per_unit(arm)


def _verdicts(
    design: Design, estimates: list[Estimate], mode: Mode
) -> tuple[np.ndarray, np.ndarray]:
    """Per experiment: (some challenger ships, some challenger significant either way)."""
    rule = DecisionRule.of(design.metric, design.direction, guardrails=())
    intervals = [
        fixed_horizon(e, ALPHA)
        if mode is Mode.FIXED
        else always_valid(e, ALPHA, MIXING_SD[design.metric])
        for e in estimates
    ]
    p = np.stack(
        [
            np.where(e.valid, i.p, 1.0) if mode is Mode.FIXED else i.p[..., -1]
            for e, i in zip(estimates, intervals, strict=True)
        ],
        -1,
    )
    valid = np.stack([e.valid if mode is Mode.FIXED else e.valid[..., -1] for e in estimates], -1)
    difference = np.stack(
        [e.difference if mode is Mode.FIXED else e.difference[..., -1] for e in estimates], -1
    )
    ships = np.zeros(p.shape[0], dtype=bool)
    significant = np.zeros(p.shape[0], dtype=bool)
    for run in range(p.shape[0]):
        adjusted = holm(p[run])
        for k in range(p.shape[1]):
            evidence = Evidence(
                design.metric,
                bool(valid[run, k]),
                float(difference[run, k]),
                float(p[run, k]),
                0.0,
                0.0,
            )
            verdict = judge(rule, f"c{k}", evidence, float(adjusted[k]), {}, mode, ALPHA)
            ships[run] |= verdict.verdict is Verdict.SHIP
            significant[run] |= bool(valid[run, k]) and adjusted[k] < ALPHA
    return ships, significant


def run(design: Design, sims: int, seed: int, *, planted: bool, sequential: bool = False) -> Rates:
    """``sims`` experiments of the design at its planned size; A/A unless ``planted``."""
    population = design.planted if planted else design.null
    sized: Plan = plan(design.plan_inputs)
    horizon = 2.0 if design.reports else 1.0
    units = math.ceil(sized.units_total * horizon * 1.1) + 200  # room for the plan in each arm
    rng = np.random.default_rng(seed)
    ship = significant = naive = 0
    chunk = max(1, _CHUNK_CELLS // units)
    arms = len(population.arms)
    for start in range(0, sims, chunk):
        count = min(chunk, sims - start)
        counts, arm = simulate(rng, population, count, units)
        cols = metric_columns(counts, _strata_per_unit(counts, arm, arms), design.metric)
        cut = _freeze(arm, arms, sized.units_smallest_arm)
        if sequential:
            marks = np.unique(np.linspace(0, sized.units_total - 1, LOOKS).round().astype(np.intp))
            estimates = [
                compare(
                    Moments.cumulative(cols, arm == 0, marks),
                    Moments.cumulative(cols, arm == k, marks),
                )
                for k in range(1, arms)
            ]
            ships, sig = _verdicts(design, estimates, Mode.SEQUENTIAL)
        else:
            frozen = np.arange(units)[None, :] <= cut[:, None]
            estimates = [
                compare(
                    Moments.of(cols, (arm == 0) & frozen), Moments.of(cols, (arm == k) & frozen)
                )
                for k in range(1, arms)
            ]
            ships, sig = _verdicts(design, estimates, Mode.FIXED)
            if design.reports:
                naive += int(_naive_reports(cols, arm, cut).sum())
        ship += int(ships.sum())
        significant += int(sig.sum())
    return Rates(sims, ship, significant, naive)


def _freeze(arm: np.ndarray, arms: int, planned: int) -> np.ndarray:
    """Per experiment, the unit at which every arm has ``planned`` units (cf.
    ``experiments.analysis.freeze_index``)."""
    cuts = []
    for k in range(arms):
        enough = np.cumsum(arm == k, axis=1) >= planned
        cuts.append(np.where(enough.any(1), np.argmax(enough, axis=1), arm.shape[1] - 1))
    return np.max(np.stack(cuts, -1), -1)


def _naive_reports(cols: object, arm: np.ndarray, cut: np.ndarray) -> np.ndarray:
    """What unfrozen reports would say: significant at any report from the plan to 2x it."""
    from experiments.units import MetricColumns

    assert isinstance(cols, MetricColumns)
    hit = np.zeros(arm.shape[0], dtype=bool)
    for share in REPORTS:
        if share < 1.0:
            continue
        upto = np.arange(arm.shape[1])[None, :] <= (cut * share).astype(np.intp)[:, None]
        est = compare(Moments.of(cols, (arm == 0) & upto), Moments.of(cols, (arm == 1) & upto))
        hit |= est.valid & (fixed_horizon(est, ALPHA).p < ALPHA)
    return hit


def _with_bound(rates: Rates, count: int) -> str:
    return f"{rates.rate(count):.3f} ({rates.upper(count):.3f})"


def table(sims: int, seed: int, out: Callable[[str], None] = print) -> None:
    """Print the A/A table and the power table for every design."""
    out(f"A/A false positives (alpha {ALPHA}; one-sided 95% Clopper-Pearson upper bounds)\n")
    out("| design | analysis | runs | ship rate (bound) | significant either way (bound) |")
    out("|---|---|---|---|---|")
    for design in designs():
        modes = [False, True] if design.sequential else [False]
        for sequential in modes:
            r = run(design, sims, seed, planted=False, sequential=sequential)
            kind = "always-valid, 20 looks" if sequential else "frozen at the plan"
            out(
                f"| {design.name} | {kind} | {r.runs} | {_with_bound(r, r.ship)}"
                f" | {_with_bound(r, r.significant)} |"
            )
            if design.reports:
                out(
                    f"| {design.name} | unfrozen, old behaviour | {r.runs} | – |"
                    f" {r.rate(r.naive):.3f} ({r.upper(r.naive):.3f}) |"
                )
    out("\nPlanted effects at the planned size (planned power 0.80)\n")
    out("| design | metric | units planned (smallest arm) | runs | power found |")
    out("|---|---|---|---|---|")
    for design in designs():
        sized = plan(design.plan_inputs)
        r = run(design, sims, seed + 1, planted=True)
        values = " → ".join(f"{v:g}" for v in design.plan_inputs.values)
        out(
            f"| {design.name} | {design.metric} {values} | {sized.units_smallest_arm} |"
            f" {r.runs} | {r.rate(r.ship):.3f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    table(args.sims, args.seed)


if __name__ == "__main__":
    main()
