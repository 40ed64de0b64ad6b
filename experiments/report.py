"""Report out: an ``ExperimentAnalysis`` as Markdown (or plain HTML), PNG plots and JSON.

The HTML is converted from the same Markdown by a small converter of the few constructs
written here (headings, tables, block quotes, lists, images, bold, code): no dependency.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from experiments.outcomes import (
    ArmSummary,
    Comparison,
    ExperimentAnalysis,
    Proportion,
    Verdict,
)
from modq.errors import ExperimentError

FORMATS = ("md", "html")
PLOTS_MISSING = "plots not drawn: matplotlib is not installed (`pip install 'modq[report]'`)"
_PLOT_TITLES = {
    "rates": "Rates, precision and recall (Wilson intervals)",
    "latency": "Latency distribution",
    "always_valid": "Always-valid p-value over time",
}


def _num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}g}"


def _ms(value: float | None, *, signed: bool = False) -> str:
    """Milliseconds as a plain number: thousands separators, never an exponent."""
    if value is None or value != value:  # None or NaN
        return "–"
    sign = "+" if signed else ""
    if abs(value) >= 100:
        return f"{value:{sign},.0f}"
    return f"{value:{sign}.1f}" if abs(value) >= 1 else f"{value:{sign}.2f}"


def _p(value: float | None) -> str:
    if value is None:
        return "–"
    return "< 0.0001" if value < 1e-4 else f"{value:.4f}"


def _share(value: Proportion) -> str:
    if value.estimate is None:
        return "–"
    interval = f"[{value.low:.3f}, {value.high:.3f}]"
    return f"{value.estimate:.3f} {interval} ({value.successes}/{value.trials})"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return [line(header), line(["---"] * len(header)), *(line(r) for r in rows)]


def _arm_row(arm: ArmSummary, control: str) -> list[str]:
    role = "control" if arm.name == control else ("shadow" if arm.shadow else "challenger")
    f1 = _num(arm.f1)
    if arm.f1_low is not None and arm.f1_high is not None:
        f1 += f" [{arm.f1_low:.3f}, {arm.f1_high:.3f}]"
    latency = arm.latency
    return [
        f"`{arm.name}`",
        role,
        f"{arm.weight:g}",
        str(arm.sample_size),
        str(arm.reviewed),
        _share(arm.action_rate),
        _share(arm.flag_rate),
        _share(arm.remove_rate),
        _share(arm.precision),
        _share(arm.recall),
        f1,
        f"{_ms(latency.p50_ms)} / {_ms(latency.p95_ms)} / {_ms(latency.p99_ms)}",
    ]


def _comparison_row(c: Comparison) -> list[str]:
    value = _ms if c.metric == "latency_ms" else _num
    if c.difference is None:
        difference = "–"
    elif c.metric == "latency_ms":
        difference = _ms(c.difference, signed=True)
    else:
        difference = f"{c.difference:+.3g}"
    verdict = f"**{c.verdict}**" if c.verdict is Verdict.SIGNIFICANT else str(c.verdict)
    metric = f"**{c.metric}** (primary)" if c.primary else c.metric
    return [
        f"`{c.challenger}`",
        metric,
        c.test,
        f"{value(c.control_value)} (n={c.control_n})",
        f"{value(c.challenger_value)} (n={c.challenger_n})",
        difference,
        _p(c.p_value),
        _p(c.always_valid_p_value),
        verdict,
    ]


def render_markdown(
    analysis: ExperimentAnalysis,
    *,
    plots: Mapping[str, str] | None = None,
    plots_note: str | None = None,
) -> str:
    """The report as Markdown: warnings first, the verdict, per-variant and per-comparison
    tables, the SRM check, the plots (``{kind: relative file name}``), the methods."""
    name = analysis.experiment_id or "(unnamed)"
    control = analysis.arms[0].name if analysis.arms else ""
    lines = [f"# A/B report: {name}", ""]
    for warning in analysis.warnings:
        loud = "SAMPLE-RATIO MISMATCH" in warning or "not reached" in warning
        lines += [f"> **WARNING: {warning}**" if loud else f"> Note: {warning}", ">"]
    if analysis.warnings:
        lines[-1] = ""
    lines += [f"**Verdict: {analysis.verdict}** — {analysis.verdict_text}", ""]
    planned = analysis.planned_sample_size
    span = ""
    if analysis.first_assigned_at and analysis.last_assigned_at:
        first, last = analysis.first_assigned_at, analysis.last_assigned_at
        span = f" from {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M}"
    lines += [
        f"- observations: {analysis.observations}{span}",
        f"- alpha: {analysis.alpha}; primary metric: {analysis.primary_metric}",
        f"- planned sample size per live arm: {planned if planned is not None else 'none'}"
        + (
            ""
            if analysis.planned_sample_size_reached is None
            else f" ({'reached' if analysis.planned_sample_size_reached else 'not reached'})"
        ),
        "",
        "## Variants",
        "",
        f"Shares with {1 - analysis.alpha:.0%} Wilson intervals; F1 with a bootstrap interval.",
        "",
    ]
    header = ["variant", "role", "weight", "n", "reviewed", "action rate", "flag rate"]
    header += ["remove rate", "precision", "recall", "F1", "latency p50/p95/p99 ms"]
    lines += _table(header, [_arm_row(arm, control) for arm in analysis.arms])
    lines += ["", f"## Comparisons with the control `{control}`", ""]
    if analysis.comparisons:
        header = ["challenger", "metric", "test", "control", "challenger", "difference", "p"]
        header += ["always-valid p", "verdict"]
        lines += _table(header, [_comparison_row(c) for c in analysis.comparisons])
        notes = sorted(
            {
                f"`{c.challenger}` {c.metric}: {c.note}"
                for c in analysis.comparisons
                if c.note and c.paired
            }
        )
        lines += ["", *(f"- {n}" for n in notes)] if notes else []
        bases = sorted({c.decided_on for c in analysis.comparisons})
        lines += ["", f"Verdicts rest on: {'; '.join(bases)}."]
    else:
        lines.append("Only one arm: nothing to compare.")
    lines += ["", *_srm_section(analysis), "", "## Plots", ""]
    if plots:
        for kind, file_name in plots.items():
            lines += [f"### {_PLOT_TITLES.get(kind, kind)}", "", f"![{kind}]({file_name})", ""]
    else:
        lines += [plots_note or "No plots.", ""]
    lines += _methods(analysis)
    return "\n".join(lines) + "\n"


def _srm_section(analysis: ExperimentAnalysis) -> list[str]:
    lines = ["## Sample-ratio check", ""]
    srm = analysis.srm
    if srm is None:
        return [*lines, "Fewer than two live arms: no split to check."]
    rows = [
        [f"`{arm}`", str(seen), f"{expected:.1f}"]
        for arm, seen, expected in zip(srm.arms, srm.observed, srm.expected, strict=True)
    ]
    lines += _table(["live arm", "assigned", "expected by weight"], rows)
    state = "**ALARM: comparisons are not to be trusted**" if srm.alarm else "no alarm"
    lines += [
        "",
        f"Chi-square {srm.statistic:.3g}, p = {_p(srm.p_value)}"
        f" (alarm below {srm.threshold}): {state}.",
    ]
    return lines


def _methods(analysis: ExperimentAnalysis) -> list[str]:
    return [
        "## Method",
        "",
        "- Action = flag or remove. Precision = violations among reviewed actioned items;"
        " recall = actioned among reviewed violations.",
        "- Live arms: two-proportion z-tests (pooled) and Welch's t-test on latency. Shadow arms"
        " pair with the control on content: McNemar exact on action and remove rates.",
        "- Always-valid p-values: mixture SPRT (Johari, Pekelis & Walsh 2017), normal"
        f" approximation, τ² = {analysis.mixing_variance:g} for proportions,"
        f" τ = {analysis.latency_mixing_sd_ms:g} ms for latency; valid however often one looks.",
        "- Sample-ratio mismatch: chi-square of live assignment counts against the weights.",
        "",
    ]


_INLINE = [
    (re.compile(r"\*\*(.+?)\*\*"), r"<strong>\1</strong>"),
    (re.compile(r"`(.+?)`"), r"<code>\1</code>"),
]
_IMAGE = re.compile(r"^!\[(.*?)\]\((.*?)\)$")


def _inline(text: str) -> str:
    text = html.escape(text, quote=False)
    for pattern, replacement in _INLINE:
        text = pattern.sub(replacement, text)
    return text


def _cells(line: str) -> list[str]:
    parts = re.split(r"(?<!\\)\|", line.strip())[1:-1]
    return [p.strip().replace("\\|", "|") for p in parts]


def markdown_to_html(markdown: str, title: str = "A/B report") -> str:
    """HTML for the Markdown ``render_markdown`` writes (not a general converter)."""
    body: list[str] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("|"):
            block = []
            while i < len(lines) and lines[i].startswith("|"):
                block.append(lines[i])
                i += 1
            head = "".join(f"<th>{_inline(c)}</th>" for c in _cells(block[0]))
            rows = "".join(
                "<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in _cells(r)) + "</tr>"
                for r in block[2:]
            )
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
            continue
        if line.startswith(">"):
            quote = []
            while i < len(lines) and lines[i].startswith(">"):
                text = lines[i].lstrip(">").strip()
                if text:
                    quote.append(f"<p>{_inline(text)}</p>")
                i += 1
            body.append(f'<blockquote class="warning">{"".join(quote)}</blockquote>')
            continue
        if line.startswith("- "):
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(f"<li>{_inline(lines[i][2:])}</li>")
                i += 1
            body.append(f"<ul>{''.join(items)}</ul>")
            continue
        heading = re.match(r"^(#{1,6}) (.*)$", line)
        image = _IMAGE.match(line)
        if heading:
            level = len(heading.group(1))
            body.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif image:
            alt, src = (html.escape(g) for g in image.groups())
            body.append(f'<p><img src="{src}" alt="{alt}"></p>')
        elif line.strip():
            body.append(f"<p>{_inline(line)}</p>")
        i += 1
    style = (
        "body{font-family:sans-serif;max-width:1200px;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 6px;font-size:90%}"
        "blockquote.warning{background:#fff3cd;border-left:6px solid #d9534f;padding:4px 12px}"
        "img{max-width:100%}"
    )
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{style}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def write_report(analysis: ExperimentAnalysis, out_dir: Path, *, fmt: str = "md") -> Path:
    """Write report.md (or report.html), the PNG plots and analysis.json into ``out_dir``;
    returns the report's path. Without matplotlib the report says it has no plots."""
    if fmt not in FORMATS:
        raise ExperimentError(f"report format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    plots_note = None
    try:
        from experiments.plots import write_plots

        written = write_plots(analysis, out_dir)
    except ModuleNotFoundError as error:
        if error.name is None or not error.name.startswith("matplotlib"):
            raise
        written, plots_note = {}, PLOTS_MISSING
    plots = {kind: path.name for kind, path in written.items()}
    markdown = render_markdown(analysis, plots=plots, plots_note=plots_note)
    (out_dir / "analysis.json").write_text(json.dumps(analysis.to_dict(), indent=2) + "\n")
    if fmt == "html":
        path = out_dir / "report.html"
        path.write_text(markdown_to_html(markdown, f"A/B report: {analysis.experiment_id}"))
    else:
        path = out_dir / "report.md"
        path.write_text(markdown)
    return path
