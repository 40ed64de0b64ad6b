"""``python -m bench.faults`` (``make faults``): the command runs a real scenario and prints its
table; the table lands between the markers of a document and nowhere else."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.faults import FaultRow, runner

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.integration
@pytest.mark.slow
def test_the_command_runs_the_poison_scenario_and_prints_its_row(tmp_path):
    """The quick poison scenario through the CLI: its own redis-server and worker, a row with
    nothing lost or duplicated, in the table and the JSON file."""
    out = tmp_path / "faults.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.faults", "--quick", "--only", "poison", "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("| scenario | broker | sent | stored | lost | duplicated |")
    (row,) = json.loads(out.read_text())
    assert row["scenario"] == "poison messages" and row["sent"] > 0
    assert row["lost"] == 0 and row["duplicated"] == 0 and row["stored"] == row["sent"]
    assert row["dead_lettered"] == row["extra"]["poison_sent"] > 0  # each parked, with a reason
    assert row["extra"]["worker_alive"] and row["extra"]["unrecoverable_errors"] == 0
    assert "| poison messages | redis (AOF) |" in done.stdout


def test_an_unknown_scenario_is_refused_before_anything_runs(capsys):
    with pytest.raises(SystemExit) as exited:
        runner.main(["--only", "poison,nosuch"])
    assert exited.value.code == 2
    assert "unknown scenario(s): nosuch" in capsys.readouterr().err


def test_the_table_replaces_only_what_is_between_the_markers(tmp_path, monkeypatch):
    doc = tmp_path / "reliability.md"
    doc.write_text(f"# Title\nbefore\n{runner.BEGIN}\nold table\n{runner.END}\nafter\n")
    monkeypatch.setattr(runner, "DOC", doc)
    row = FaultRow("worker_kill", "redis (AOF)", 10, 10, 0, 0, 0, seconds=3.0, notes="n")
    runner.update_doc(runner.table([row]))
    text = doc.read_text()
    assert text.startswith("# Title\nbefore\n") and text.endswith(f"{runner.END}\nafter\n")
    assert "old table" not in text
    assert "| worker_kill | redis (AOF) | 10 | 10 | 0 | 0 | 0 | 0 | 0 | 3 | n |" in text
