"""The bench's arithmetic: the ceiling is the best cell, ratios and target verdicts."""

import pytest

from bench.modq_paths import percentile
from bench.report import Figures
from bench.summary import summarize


def _figures(**medians):
    figures = Figures()
    for key, value in medians.items():
        figures.add(key.replace("__", ":"), key, value)
    return figures


def _verdicts(figures, extra=None):
    payload = summarize(figures, extra or {}, {})
    return payload, {t["target"].split(" ")[0]: t["met"] for t in payload["targets"]}


def test_the_ceiling_is_the_best_cell_and_ratios_are_against_it():
    figures = _figures(
        ceiling__2x1__sorted=200.0,
        ceiling__1x1__one=150.0,
        seed=50.0,
        nobatch=100.0,
        modq__per_item=170.0,
        modq__bulk100=150.0,
        modq__bulk1000=185.0,
        modq__cache=3000.0,
    )
    figures.items["modq:per-item"] = figures.items.pop("modq:per_item")
    payload, met = _verdicts(figures)
    assert payload["ceiling_key"] == "ceiling:2x1:sorted"
    ratios = payload["ratios"]
    assert ratios["per_item_vs_ceiling"] == pytest.approx(0.85)
    assert ratios["bulk_best"] == "modq:bulk1000"
    assert ratios["bulk_vs_ceiling"] == pytest.approx(0.925)
    assert ratios["per_item_vs_seed"] == pytest.approx(3.4)
    assert ratios["cache_vs_ceiling"] == pytest.approx(15.0)
    assert met["per-item"] is True and met["bulk"] is True and met["cache"] is False


def test_urgency_and_memory_verdicts_and_missing_rows():
    figures = _figures(ceiling__1x1__one=100.0)
    extra = {
        "urgency": {
            "idle_ms": [10.0],
            "busy_ms": [30.0],
            "idle_p50_ms": 10.0,
            "idle_p99_ms": 20.0,
            "busy_p50_ms": 30.0,
            "busy_p99_ms": 41.0,
            "backlog_items": 10_000,
            "backlog_per_message": 100,
        },
        "memory": {"loaded_mib": 250.0, "after_jobs": {10_000: 400.0, 100_000: 416.0}},
    }
    payload, met = _verdicts(figures, extra)
    assert payload["ratios"]["urgent_p99_busy_vs_idle"] == pytest.approx(2.05)
    assert met["urgent"] is False  # 2.05x > 2x
    assert payload["ratios"]["rss_last_vs_first"] == pytest.approx(0.04)
    assert met["worker"] is True  # +4% is within 5%
    assert met["per-item"] is None  # not measured: no verdict, never a pass


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([5.0], 99) == 5.0
