"""The report as written to disk: Markdown and HTML, warnings at the top, real PNG plots."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from experiments.analysis import ArmPlan, ExperimentAnalysis, analyze
from experiments.decision import DecisionRule, Guardrail
from experiments.report import PLOTS_MISSING, markdown_to_html, render_markdown, write_report
from modq.errors import ExperimentError
from tests.experiments import Arm, shadow_of, simulate

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PLOTS = ("lift.png", "coverage.png", "rates.png", "latency.png", "always_valid.png")


def _analysis(counts: tuple[int, int], planned: int | None) -> ExperimentAnalysis:
    rng = np.random.default_rng(11)
    arms = [Arm("a", counts[0], precision=0.6), Arm("b", counts[1], precision=0.8)]
    observations, plans = simulate(rng, arms)
    shadow = shadow_of(rng, observations, "a", extra_action_rate=0.05)
    return analyze(
        observations + shadow,
        [*plans, ArmPlan("shadow", 0.0, True)],
        planned_sample_size=planned,
        experiment_id="exp-1",
        rule=DecisionRule.of(
            "precision",
            guardrails=[Guardrail.of("latency_p95_ms", 0.2), Guardrail.of("latency_ms", 0.2)],
        ),
    )


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path
    assert len(data) > 1024, path


def test_markdown_report_has_tables_plots_and_json(tmp_path: Path) -> None:
    analysis = _analysis((600, 600), planned=500)
    path = write_report(analysis, tmp_path)
    assert path == tmp_path / "report.md"
    text = path.read_text()
    assert text.startswith("# A/B report: exp-1")
    assert "| variant | role | weight | units | posts | reviewed |" in text
    assert "| `a` | control | 0.5 |" in text and "| `shadow` | shadow | 0 |" in text
    decision = text.split("## Primary metric")[0]
    assert "primary metric: **precision**, must increase" in decision
    assert "latency_p95_ms (may worsen by at most 20%)" in decision
    assert "| challenger | verdict | primary p (Holm) | reason |" in decision
    assert "| `b` | **ship** |" in decision
    rows = text.split("## Primary metric")[1].split("## Review coverage")[0]
    assert "| `b` | precision | primary |" in rows and "| `b` | latency_ms | guardrail |" in rows
    assert "margin 20%" in rows and "| `shadow` (shadow) | precision | primary |" in rows
    assert "## Review coverage" in text and "| `a` | allow |" in text
    assert "## Secondary metrics (Benjamini-Hochberg across metrics)" in text
    assert "SAMPLE-RATIO MISMATCH" not in text and "not reached" not in text
    assert f"**Verdict: {analysis.verdict}**" in text
    for name in PLOTS:
        _assert_png(tmp_path / name)
        assert f"]({name})" in text
    stored = json.loads((tmp_path / "analysis.json").read_text())
    assert stored["experiment_id"] == "exp-1" and len(stored["arms"]) == 3


def test_srm_alarm_is_the_first_thing_the_report_says(tmp_path: Path) -> None:
    analysis = _analysis((5400, 4600), planned=None)
    assert analysis.srm_alarm
    text = write_report(analysis, tmp_path).read_text()
    first_block = text.split("**Verdict")[0]
    assert "WARNING: SAMPLE-RATIO MISMATCH" in first_block
    assert "comparisons are not to be trusted" in first_block
    assert "**Verdict: untrusted**" in text
    assert "ALARM: comparisons are not to be trusted" in text


def test_planned_size_not_reached_is_warned(tmp_path: Path) -> None:
    text = render_markdown(_analysis((300, 300), planned=1000))
    warning = "planned sample size not reached (300 of 1000 units in the smallest live arm)"
    assert warning in text.split("**Verdict")[0]
    assert "keep running, do not decide" in text
    assert "**Verdict: keep running**" in text


def test_html_report(tmp_path: Path) -> None:
    analysis = _analysis((5400, 4600), planned=None)
    path = write_report(analysis, tmp_path, fmt="html")
    assert path == tmp_path / "report.html"
    page = path.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert '<blockquote class="warning"><p><strong>WARNING: SAMPLE-RATIO MISMATCH' in page
    assert "<th>variant</th>" in page and "<td><code>a</code></td>" in page
    assert "<h2>Decision</h2>" in page and "<th>verdict</th>" in page
    assert "<h2>Review coverage</h2>" in page and "<th>lift [CI]</th>" in page
    assert '<img src="rates.png" alt="rates">' in page
    assert "|" not in page.split("<body>")[1].replace("\\|", "")  # every table converted
    for name in PLOTS:
        _assert_png(tmp_path / name)


def test_html_converter_escapes_and_keeps_pipes_in_cells() -> None:
    page = markdown_to_html("| a | b |\n| --- | --- |\n| x \\| y | <z> |\n")
    assert "<td>x | y</td><td>&lt;z&gt;</td>" in page


def test_without_matplotlib_the_report_says_it_has_no_plots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    path = write_report(_analysis((300, 300), planned=None), tmp_path)
    assert PLOTS_MISSING in path.read_text()
    assert not list(tmp_path.glob("*.png"))
    assert (tmp_path / "analysis.json").exists()


def test_unknown_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ExperimentError, match="format"):
        write_report(_analysis((100, 100), planned=None), tmp_path, fmt="pdf")


def test_latency_prints_as_plain_milliseconds() -> None:
    rng = np.random.default_rng(5)
    arms = [Arm("a", 300, latency_ms=6000.0), Arm("b", 300, latency_ms=6500.0)]
    analysis = analyze(*simulate(rng, arms, latency_sd_ms=200.0))
    text = render_markdown(analysis)
    p95 = analysis.arm("a").metrics["latency_p95_ms"]
    assert p95.value is not None and p95.value > 1000
    assert f"{p95.value:,.0f}" in text
    row = next(line for line in text.splitlines() if "| latency_ms |" in line)
    comparison = analysis.comparison("b", "latency_ms")
    assert comparison.control_value is not None and comparison.difference is not None
    assert f"| {comparison.control_value:,.0f} |" in row
    assert f"| {comparison.difference:+,.0f} [" in row
    assert "e+" not in text.split("## Sample-ratio check")[0]


def test_unequal_review_coverage_is_loud_in_the_report(tmp_path: Path) -> None:
    rng = np.random.default_rng(21)
    observations, plans = simulate(rng, [Arm("a", 800), Arm("b", 800)])
    thinned = [
        o
        if o.variant == "a" or o.decision != "remove" or rng.random() < 0.1
        else type(o)(
            o.variant, o.shadow, o.content_id, o.decision, o.latency_ms, o.assigned_at, None
        )
        for o in observations
    ]
    analysis = analyze(thinned, plans)
    assert analysis.coverage is not None and analysis.coverage.alarm
    text = write_report(analysis, tmp_path).read_text()
    assert "WARNING: REVIEW COVERAGE DIFFERS BETWEEN ARMS" in text.split("**Verdict")[0]
    assert "**ALARM: coverage differs between arms**" in text
