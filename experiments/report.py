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

from experiments.decision import Verdict
from experiments.outcomes import ArmSummary, Comparison, ExperimentAnalysis, MetricValue, Role
from experiments.units import METRICS
from modq.errors import ExperimentError

FORMATS = ("md", "html")
PLOTS_MISSING = "plots not drawn: matplotlib is not installed (`pip install 'modq[report]'`)"
_PLOT_TITLES = {
    "lift": "Relative lift per challenger, with intervals and guardrail margins",
    "coverage": "Review coverage per arm and decision",
    "rates": "Rates, precision and recall per arm (delta-method intervals over units)",
    "latency": "Latency distribution",
    "always_valid": "Always-valid p-value over time",
}
_MS_METRICS = ("latency_ms", "latency_p95_ms")
_LOUD = ("SAMPLE-RATIO MISMATCH", "REVIEW COVERAGE", "not reached")


def _value(metric: str, value: float | None, *, signed: bool = False) -> str:
    if value is None or value != value:
        return "–"
    if metric in _MS_METRICS:
        return _ms(value, signed=signed)
    sign = "+" if signed else ""
    return f"{value:{sign}.4g}" if abs(value) < 1000 else f"{value:{sign},.0f}"


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


def _pct(value: float | None) -> str:
    return "–" if value is None or value != value else f"{value:+.1%}"


def _between(metric: str, low: float | None, high: float | None, *, signed: bool = False) -> str:
    if low is None or high is None:
        return ""
    return f" [{_value(metric, low, signed=signed)}, {_value(metric, high, signed=signed)}]"


def _metric_cell(metric: str, m: MetricValue) -> str:
    return _value(metric, m.value) + _between(metric, m.low, m.high)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return [line(header), line(["---"] * len(header)), *(line(r) for r in rows)]


def _arm_row(arm: ArmSummary, control: str) -> list[str]:
    role = "control" if arm.name == control else ("shadow" if arm.shadow else "challenger")
    cells = [f"`{arm.name}`", role, f"{arm.weight:g}", str(arm.units), str(arm.posts)]
    cells.append(str(arm.reviewed))
    return cells + [_metric_cell(m, arm.metrics[m]) for m in METRICS]


def _comparison_row(c: Comparison) -> list[str]:
    status = (
        "**significant**"
        if c.significant
        else ("not significant" if c.valid else "too little data")
    )
    if c.role is Role.GUARDRAIL and c.margin is not None:
        status = f"margin {c.margin:.0%}; " + status
    lift = _pct(c.lift) + (
        f" [{_pct(c.lift_low)}, {_pct(c.lift_high)}]" if c.lift_low is not None else ""
    )
    always = _p(c.always_valid_p_value) + _between(
        c.metric, c.always_valid_low, c.always_valid_high, signed=True
    )
    return [
        f"`{c.challenger}`" + (" (shadow)" if c.paired else ""),
        c.metric,
        str(c.role),
        _value(c.metric, c.control_value),
        _value(c.metric, c.challenger_value),
        _value(c.metric, c.difference, signed=True)
        + _between(c.metric, c.low, c.high, signed=True),
        lift,
        _p(c.p_value),
        always,
        _p(c.adjusted_p_value),
        status,
    ]


def render_markdown(
    analysis: ExperimentAnalysis,
    *,
    plots: Mapping[str, str] | None = None,
    plots_note: str | None = None,
) -> str:
    """The report as Markdown: warnings first, the decision and each challenger's verdict,
    the primary metric and guardrails with intervals, review coverage, secondary metrics,
    the variants, the SRM check, the plots (``{kind: relative file name}``), the method."""
    name = analysis.experiment_id or "(unnamed)"
    control = analysis.arms[0].name if analysis.arms else ""
    lines = [f"# A/B report: {name}", ""]
    for warning in analysis.warnings:
        loud = any(word in warning for word in _LOUD)
        lines += [f"> **WARNING: {warning}**" if loud else f"> Note: {warning}", ">"]
    if analysis.warnings:
        lines[-1] = ""
    lines += [f"**Verdict: {analysis.verdict}** — {analysis.verdict_text}", ""]
    lines += _decision_section(analysis)
    lines += ["", f"## Primary metric and guardrails against the control `{control}`", ""]
    header = ["challenger", "metric", "role", "control", "challenger", "difference [CI]"]
    header += ["lift [CI]", "p", "always-valid p [CS]", "adjusted p", "status"]
    decisive = [c for c in analysis.comparisons if c.role is not Role.SECONDARY]
    secondary = [c for c in analysis.comparisons if c.role is Role.SECONDARY]
    if decisive:
        lines += _table(header, [_comparison_row(c) for c in decisive])
    else:
        lines.append("Nothing to compare yet.")
    lines += ["", *_coverage_section(analysis), ""]
    lines += ["## Secondary metrics (Benjamini-Hochberg across metrics)", ""]
    lines += _table(header, [_comparison_row(c) for c in secondary]) if secondary else ["None."]
    lines += [
        "",
        "## Variants",
        "",
        f"Each metric with its {1 - analysis.alpha:.0%} interval over units.",
        "",
    ]
    head = ["variant", "role", "weight", "units", "posts", "reviewed", *METRICS]
    lines += _table(head, [_arm_row(arm, control) for arm in analysis.arms])
    lines += ["", *_srm_section(analysis), "", "## Plots", ""]
    if plots:
        for kind, file_name in plots.items():
            lines += [f"### {_PLOT_TITLES.get(kind, kind)}", "", f"![{kind}]({file_name})", ""]
    else:
        lines += [plots_note or "No plots.", ""]
    lines += _methods(analysis)
    return "\n".join(lines) + "\n"


def _decision_section(analysis: ExperimentAnalysis) -> list[str]:
    rule = analysis.rule
    rails = ", ".join(
        f"{g['metric']} (may worsen by at most {g['margin']:.0%})" for g in rule["guardrails"]
    )
    planned = analysis.planned_sample_size
    lines = [
        "## Decision",
        "",
        f"- primary metric: **{rule['primary']}**, must {rule['direction']}",
        f"- guardrails: {rails or 'none'}",
        f"- alpha: {analysis.alpha}; analysis: {analysis.mode}",
        "- planned size: "
        + ("none" if planned is None else f"{planned} units in the smallest live arm")
        + (
            ""
            if analysis.planned_sample_size_reached is None
            else f" ({'reached' if analysis.planned_sample_size_reached else 'not reached'})"
        ),
    ]
    if analysis.frozen_at is not None:
        lines.append(
            f"- data frozen at {analysis.frozen_at:%Y-%m-%d %H:%M:%S}; "
            f"{analysis.excluded_after_freeze} later observations not analysed"
        )
    span = ""
    if analysis.first_assigned_at and analysis.last_assigned_at:
        first, last = analysis.first_assigned_at, analysis.last_assigned_at
        span = f" from {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M}"
    lines += [f"- observations: {analysis.observations}{span}", ""]
    if analysis.challengers:
        rows = [
            [
                f"`{v.challenger}`",
                f"**{v.verdict}**" if v.verdict is Verdict.SHIP else str(v.verdict),
                _p(v.primary_p_adjusted),
                v.reason,
            ]
            for v in analysis.challengers
        ]
        lines += _table(["challenger", "verdict", "primary p (Holm)", "reason"], rows)
    return lines


def _coverage_section(analysis: ExperimentAnalysis) -> list[str]:
    lines = ["## Review coverage", ""]
    rows = []
    for arm in analysis.arms:
        for cell in arm.coverage:
            share = "–" if cell.share is None else f"{cell.share:.1%}"
            rows.append([f"`{arm.name}`", cell.stratum, str(cell.posts), str(cell.reviewed), share])
    lines += _table(["arm", "decision", "posts", "reviewed", "share reviewed"], rows)
    check = analysis.coverage
    if check is None:
        return [*lines, "", "Not enough reviews to compare coverage between arms."]
    tests = ", ".join(f"{stratum} p = {_p(p)}" for stratum, p in check.p_values.items())
    state = "**ALARM: coverage differs between arms**" if check.alarm else "no alarm"
    return [
        *lines,
        "",
        f"Chi-square of reviewed vs not across arms: {tests} (alarm below {check.threshold}):"
        f" {state}. Labelled metrics weight each reviewed item by the inverse review share of"
        " its (arm, decision) stratum.",
    ]


def _srm_section(analysis: ExperimentAnalysis) -> list[str]:
    lines = ["## Sample-ratio check", ""]
    srm = analysis.srm
    if srm is None:
        return [*lines, "Fewer than two live arms: no split to check."]
    rows = [
        [f"`{arm}`", str(seen), f"{expected:.1f}"]
        for arm, seen, expected in zip(srm.arms, srm.observed, srm.expected, strict=True)
    ]
    lines += _table(["live arm", "units assigned", "expected by weight"], rows)
    state = "**ALARM: comparisons are not to be trusted**" if srm.alarm else "no alarm"
    lines += [
        "",
        f"Chi-square {srm.statistic:.3g} on distinct units, p = {_p(srm.p_value)}"
        f" (alarm below {srm.threshold}): {state}.",
    ]
    return lines


def _methods(analysis: ExperimentAnalysis) -> list[str]:
    mixing = ", ".join(f"{m} {v:g}" for m, v in analysis.mixing_sd.items())
    return [
        "## Method",
        "",
        "- The unit of analysis is the unit of randomisation: each metric is a ratio of sums"
        " over units, with its delta-method variance (a user's posts are one unit).",
        "- Precision = violations among actioned posts; recall = actioned among violations;"
        " both, and violations/false actions per 1,000 posts, are post-stratified: each"
        " (arm, decision) stratum's reviewed items stand for all of its posts.",
        "- Test variance: the larger of the arms' own and the pooled-under-H0 variance; a"
        " comparison counts only with 20 units and 10 events and non-events per arm.",
        "- Always-valid p-values and confidence sequences: mixture SPRT (Johari, Pekelis &"
        f" Walsh 2017), mixing sd per metric: {mixing}.",
        "- Holm across challengers (shadows included) on the primary metric; Benjamini-Hochberg"
        " across secondary metrics; guardrails are non-inferiority bounds on the relative lift.",
        "- Sample-ratio mismatch: chi-square of distinct units per live arm against the weights.",
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
