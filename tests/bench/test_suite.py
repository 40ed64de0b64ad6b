"""Smoke run of the benchmark suite with tiny sizes: every section runs and reports.

Times are never asserted (the benchmark reports them); the test checks that each row was
measured, the ratios and targets were computed, and the JSON and plot were written.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.long]


def test_a_tiny_run_measures_every_row_and_writes_json_and_plot(tmp_path, model_dir):
    command = [
        sys.executable, "-m", "bench", "--quick", "--texts", "24", "--repeats", "1",
        "--layouts", "1x1", "--out", str(tmp_path),
        "--size", "urgent_jobs=3", "--size", "backlog_items=60",
        "--size", "backlog_per_message=20", "--size", "memory_jobs=200",
    ]  # fmt: skip
    env = {**os.environ, "MODQ_MODEL_DIR": str(model_dir)}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stderr[-3000:]
    payload = json.loads((tmp_path / "quick.json").read_text())
    assert (tmp_path / "quick.png").stat().st_size > 0

    figures = payload["figures"]
    for key in ("seed", "nobatch", "modq:per-item", "modq:bulk100", "modq:cache"):
        assert figures[key]["median"] > 0, key
    assert payload["ceiling_key"].startswith("ceiling:1x1:")
    assert {k.split(":")[2] for k in figures if k.startswith("ceiling:")} == {
        "one", "fixed32", "batcher", "sorted", "lanes",
    }  # fmt: skip
    # the seed row really runs the same model (PyTorch vs ONNX scores, when served as fp32)
    if payload["extra"]["served_precision"] == "fp32":
        assert payload["extra"]["seed_torch_vs_onnx_max_abs_diff"] < 1e-3
    urgency = payload["extra"]["urgency"]
    assert len(urgency["idle_ms"]) == len(urgency["busy_ms"]) == 3
    dedicated = payload["extra"]["urgency_dedicated"]  # bulk worker + dedicated urgent worker
    assert len(dedicated["idle_ms"]) == len(dedicated["busy_ms"]) == 3
    assert "--queues urgent" in dedicated["layout"]
    memory = payload["extra"]["memory"]["after_jobs"]
    assert {200, 400} <= {int(jobs) for jobs in memory}  # the target's 100k, and twice that
    assert payload["ratios"]["rss_legs_jobs"][1] == 200
    assert payload["ratios"]["rss_beyond_target_jobs"] == [200, 400]
    stock = payload["extra"]["stock_producer"]  # issue 11: stock send_task beside modq's
    assert (
        stock["stock_p50_ms"] > 0 and stock["ratio_p50"] == payload["ratios"]["stock_vs_modq_p50"]
    )
    targets = {t["target"]: t for t in payload["targets"]}
    assert len(targets) == 8
    assert all(t["value"] is not None for t in targets.values())
    # int8 is measured where a folder exists, else reported as n/a with the reason
    assert "precision:int8" in figures or "precision:int8" in payload["notes"]
    assert "| path | median |" in payload["markdown"]
