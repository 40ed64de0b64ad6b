"""PNG plots of an ``ExperimentAnalysis`` (matplotlib, Agg, loaded only here and lazily).

``write_plots`` raises ``ModuleNotFoundError`` when matplotlib is not installed (the
``modq[report]`` extra); ``experiments.report`` then writes the report without plots.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from experiments.outcomes import ExperimentAnalysis, Role

if TYPE_CHECKING:
    from matplotlib.figure import Figure

RATES = ("action_rate", "remove_rate", "precision", "recall")
PLOT_FILES = {
    "lift": "lift.png",
    "coverage": "coverage.png",
    "rates": "rates.png",
    "latency": "latency.png",
    "always_valid": "always_valid.png",
}
_SMALLEST_P = 1e-12  # log axis floor


def write_plots(analysis: ExperimentAnalysis, out_dir: Path) -> dict[str, Path]:
    """Write the plots into ``out_dir``; returns {kind: path} for those written (the lift and
    always-valid plots need at least one comparison)."""
    import matplotlib

    matplotlib.use("Agg")
    out_dir.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Figure] = {}
    if analysis.comparisons:
        figures["lift"] = _lift(analysis)
    figures["coverage"] = _coverage(analysis)
    figures["rates"] = _rates(analysis)
    figures["latency"] = _latency(analysis)
    if analysis.comparisons:
        figures["always_valid"] = _always_valid(analysis)
    written = {}
    for kind, figure in figures.items():
        path = out_dir / PLOT_FILES[kind]
        figure.savefig(path, dpi=100)
        written[kind] = path
    return written


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _lift(analysis: ExperimentAnalysis) -> Figure:
    """The decision at a glance: relative lift of the primary metric and each guardrail per
    challenger, with intervals; guardrail margins dashed on the harmful side."""
    shown = [c for c in analysis.comparisons if c.role is not Role.SECONDARY]
    better = {g["metric"]: g["direction"] for g in analysis.rule["guardrails"]}
    figure = _figure(8, 1.2 + 0.45 * len(shown))
    axes = figure.add_subplot()
    for y, c in enumerate(shown):
        colour = "tab:blue" if c.role is Role.PRIMARY else "tab:gray"
        if c.lift is not None and c.lift_low is not None and c.lift_high is not None:
            axes.errorbar(
                [c.lift * 100],
                [y],
                xerr=[[(c.lift - c.lift_low) * 100], [(c.lift_high - c.lift) * 100]],
                fmt="o",
                color=colour,
                capsize=4,
            )
        if c.role is Role.GUARDRAIL and c.margin is not None:
            harm = -1 if better.get(c.metric) == "increase" else 1
            axes.plot([harm * c.margin * 100] * 2, [y - 0.4, y + 0.4], "r--", lw=1)
    axes.axvline(0, color="black", lw=0.8)
    axes.set_yticks(range(len(shown)), [f"{c.challenger}: {c.metric} ({c.role})" for c in shown])
    axes.invert_yaxis()
    axes.set_xlabel(f"lift vs control, % ({1 - analysis.alpha:.0%} interval); red: margin")
    axes.set_title(f"Verdict: {analysis.verdict}")
    axes.grid(alpha=0.3, axis="x")
    return figure


def _coverage(analysis: ExperimentAnalysis) -> Figure:
    """Share of each decision reviewed, per arm."""
    figure = _figure(8, 3.5)
    axes = figure.add_subplot()
    count = len(analysis.arms)
    for k, arm in enumerate(analysis.arms):
        xs = [i + (k - (count - 1) / 2) * 0.8 / max(count, 1) for i in range(len(arm.coverage))]
        shares = [(c.share or 0.0) * 100 for c in arm.coverage]
        axes.bar(xs, shares, width=0.8 / max(count, 1), label=arm.name)
    strata = [c.stratum for c in analysis.arms[0].coverage] if analysis.arms else []
    axes.set_xticks(range(len(strata)), strata)
    axes.set_ylabel("% reviewed")
    alarm = analysis.coverage is not None and analysis.coverage.alarm
    axes.set_title("Review coverage" + (" — ALARM: differs between arms" if alarm else ""))
    if analysis.arms:
        axes.legend()
    return figure


def _rates(analysis: ExperimentAnalysis) -> Figure:
    """Rates, precision and recall per variant, with their intervals as error bars."""
    figure = _figure(8, 4.5)
    axes = figure.add_subplot()
    count = len(analysis.arms)
    for k, arm in enumerate(analysis.arms):
        xs, ys, below, above = [], [], [], []
        for i, metric in enumerate(RATES):
            value = arm.metrics[metric]
            if value.value is None or value.low is None or value.high is None:
                continue
            xs.append(i + (k - (count - 1) / 2) * 0.8 / max(count, 1))
            ys.append(value.value)
            below.append(max(0.0, value.value - value.low))
            above.append(max(0.0, value.high - value.value))
        label = f"{arm.name} (shadow)" if arm.shadow else arm.name
        axes.errorbar(xs, ys, yerr=[below, above], fmt="o", capsize=4, label=label)
    axes.set_xticks(range(len(RATES)), [m.replace("_", " ") for m in RATES])
    axes.set_ylim(-0.02, 1.02)
    axes.set_ylabel(f"share ({1 - analysis.alpha:.0%} interval over units)")
    axes.set_title("Rates, precision and recall per variant")
    axes.grid(alpha=0.3)
    if analysis.arms:
        axes.legend()
    return figure


def _latency(analysis: ExperimentAnalysis) -> Figure:
    """Latency ECDF per variant (from the stored percentiles), p95 marked."""
    figure = _figure(8, 4.5)
    axes = figure.add_subplot()
    for arm in analysis.arms:
        quantiles = arm.latency_quantiles_ms
        if not quantiles:
            continue
        shares = [i / (len(quantiles) - 1) for i in range(len(quantiles))]
        (line,) = axes.step(quantiles, shares, where="post", label=f"{arm.name} (n={arm.posts})")
        axes.axvline(quantiles[95], color=line.get_color(), linestyle=":", alpha=0.7)
    axes.set_xlabel("latency (ms); dotted: p95")
    axes.set_ylabel("share of jobs at or below")
    axes.set_title("Latency distribution per variant")
    axes.grid(alpha=0.3)
    if any(arm.latency_quantiles_ms for arm in analysis.arms):
        axes.legend()
    return figure


def _always_valid(analysis: ExperimentAnalysis) -> Figure:
    """Always-valid p-value over the looks, one panel per challenger; the primary metric's
    naive fixed-horizon p-value dotted, to show what peeking would have claimed."""
    challengers = list(dict.fromkeys(c.challenger for c in analysis.comparisons))
    figure = _figure(8, 3.2 * len(challengers))
    for index, challenger in enumerate(challengers, start=1):
        axes = figure.add_subplot(len(challengers), 1, index)
        lowest = analysis.alpha / 10
        for comparison in analysis.comparisons:
            path = comparison.path
            if comparison.challenger != challenger or not path.seen:
                continue
            primary = comparison.role is Role.PRIMARY
            clip = [max(p, _SMALLEST_P) for p in path.always_valid]
            lowest = min(lowest, *clip)
            width = 2.2 if primary else 1.2
            (line,) = axes.step(path.seen, clip, where="post", lw=width, label=comparison.metric)
            if primary:
                naive = [max(p, _SMALLEST_P) for p in path.fixed_horizon]
                lowest = min(lowest, *naive)
                axes.plot(path.seen, naive, ":", color=line.get_color(), lw=1, label="naive p")
        axes.axhline(
            analysis.alpha, color="red", linestyle="--", lw=1, label=f"alpha {analysis.alpha}"
        )
        axes.set_title(f"{challenger} vs control ({analysis.mode})")
        axes.set_yscale("log")
        axes.set_ylim(lowest / 2, 1.5)
        axes.set_xlabel("observations seen (time order)")
        axes.set_ylabel("always-valid p")
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    return figure
