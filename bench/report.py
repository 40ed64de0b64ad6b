"""Figures of one run: medians with their spread, ratios, targets, the table, JSON and plot."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Figure:
    label: str
    unit: str
    runs: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def spread(self) -> str:
        if len(self.runs) == 1:
            return "(1 run)"
        return f"{min(self.runs):.0f}–{max(self.runs):.0f}"


class Figures:
    """Keyed figures in the order first recorded; progress goes to stderr."""

    def __init__(self) -> None:
        self.items: dict[str, Figure] = {}
        self.notes: dict[str, str] = {}  # key -> "n/a (reason)" for rows that could not run

    def add(self, key: str, label: str, value: float, unit: str = "texts/s") -> None:
        figure = self.items.setdefault(key, Figure(label, unit))
        figure.runs.append(value)
        print(f"  {label}: {value:.1f} {unit}", file=sys.stderr, flush=True)

    def missing(self, key: str, label: str, reason: str) -> None:
        self.notes[key] = f"{label}: n/a ({reason})"
        print(f"  {label}: n/a ({reason})", file=sys.stderr, flush=True)

    def median(self, key: str) -> float | None:
        figure = self.items.get(key)
        return figure.median if figure is not None and figure.runs else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def machine() -> dict[str, Any]:
    """What the run ran on: CPU model, cores, memory, load averages (shared machines!)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "memory_gib": memory_gib,
        "python": platform.python_version(),
        "load_average": list(os.getloadavg()),
    }


def table_rows(figures: Figures, ceiling_key: str) -> list[tuple[str, str, str, str]]:
    """(row, median, spread, vs ceiling) for every throughput figure."""
    ceiling = figures.median(ceiling_key)
    rows = []
    for key, figure in figures.items.items():
        if figure.unit != "texts/s":
            continue
        vs = ratio(figure.median, ceiling)
        mark = " ◀ ceiling" if key == ceiling_key else ""
        rows.append(
            (
                figure.label + mark,
                f"{figure.median:.0f}",
                figure.spread,
                "—" if vs is None else f"{vs:.2f}×",
            )
        )
    return rows


def print_table(title: str, header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    """A Markdown table (also readable in a terminal); returns it."""
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |"]
    lines.append("| " + " | ".join(["---"] + ["---:"] * (len(header) - 1)) + " |")
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    return text


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=float) + "\n")
    print(f"wrote {path}")


def plot(figures: Figures, ceiling_key: str, path: Path, title: str) -> None:
    """Horizontal bars: median texts/s per path, min–max as error bars, ceiling marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k, f in figures.items.items() if f.unit == "texts/s"]
    labels = [figures.items[k].label for k in keys]
    medians = [figures.items[k].median for k in keys]
    low = [m - min(figures.items[k].runs) for k, m in zip(keys, medians, strict=True)]
    high = [max(figures.items[k].runs) - m for k, m in zip(keys, medians, strict=True)]
    colours = [
        "#c33" if k == ceiling_key else "#2a7" if k.startswith("modq") else "#999" for k in keys
    ]
    figure, axes = plt.subplots(figsize=(10, 0.36 * len(keys) + 1.4))
    axes.barh(labels, medians, xerr=[low, high], color=colours)
    axes.set_xscale("log")
    for y, value in enumerate(medians):
        axes.text(value * 1.05 + high[y], y, f"{value:.0f}", va="center", fontsize=8)
    axes.invert_yaxis()
    axes.tick_params(axis="y", labelsize=8)
    axes.set_xlabel("texts/s, log scale (median of repeats; bars: min–max)")
    axes.set_title(title, fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    print(f"wrote {path}")


DOCS_BEGIN = "<!-- bench:latest:begin (written by python -m bench --write-docs) -->"
DOCS_END = "<!-- bench:latest:end -->"


def docs_section(payload: dict[str, Any], plot_path: str) -> str:
    """The latest run as Markdown: machine, load, command, time, tables, plot."""
    run = payload["run"]
    machine_ = run["machine"]
    load_start = ", ".join(f"{x:.2f}" for x in run["load_average_at_start"])
    load_end = ", ".join(f"{x:.2f}" for x in machine_["load_average"])
    return "\n".join(
        [
            DOCS_BEGIN,
            f"## Latest run: {run['date']}",
            "",
            f"Machine: {machine_['cpu']}, {machine_['cpu_count']} cores, "
            f"{machine_['memory_gib']} GiB, Python {machine_['python']}, no GPU. "
            f"Load average (1, 5, 15 min) at start {load_start}; at end {load_end}.",
            f"Command: `{run['command'].strip()}`; run time {run['elapsed_s'] / 60:.1f} min.",
            "",
            payload["markdown"].replace("### ", "#### "),
            f"![benchmark]({plot_path})",
            DOCS_END,
        ]
    )


def update_docs(path: Path, section: str, *, begin: str = DOCS_BEGIN, end: str = DOCS_END) -> None:
    """Replace the section of ``path`` between ``begin`` and ``end`` (appended if the markers
    are missing)."""
    text = path.read_text() if path.exists() else ""
    if begin in text and end in text:
        head, _, rest = text.partition(begin)
        _, _, tail = rest.partition(end)
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)
    print(f"wrote {path}")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest rank on the sorted values, ``q`` in 0..1 (0.0 when there are none): the one
    percentile of the HTTP and producer rows."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]
