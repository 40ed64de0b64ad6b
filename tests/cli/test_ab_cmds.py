"""`modq ab` as people type it: create (checked), start, show, stop, and promote a winner."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.cli.runner import modq as _modq


@pytest.fixture
def cli_env(cli_env: dict[str, str], model_dir: Path, variant_model_dir: Path) -> dict[str, str]:
    """The CLI environment with the real model as v1 (production) and its variant as v2."""
    for folder in (model_dir, variant_model_dir):
        assert _modq("model", "register", str(folder))[0] == 0
    assert _modq("model", "promote", "modq-text", "1")[0] == 0
    return cli_env


CREATE = (
    "ab",
    "create",
    "v2-vs-prod",
    "--variant",
    "control=models:/modq-text@production",
    "--variant",
    "challenger=models:/modq-text/2",
)


def test_create_refuses_what_would_break_at_run_time(cli_env: dict[str, str]) -> None:
    code, out = _modq(*CREATE, "--weight", "control=0.5", "--weight", "challenger=0.4")
    assert code == 1 and "experiment_error" in out and "sum to 1" in out
    code, out = _modq(
        *CREATE[:3],
        "--variant",
        "a=models:/modq-text@production",
        "--variant",
        "b=models:/modq-text/7",
    )
    assert code == 1 and "variant 'b'" in out and "7" in out
    code, out = _modq(*CREATE, "--policy", "challenger=v9")
    assert code == 1 and "no policy version 'v9'" in out
    code, out = _modq(*CREATE, "--weight", "control=half", "--weight", "challenger=0.5")
    assert code == 1 and "not a number" in out
    code, out = _modq("ab", "list")
    assert code == 0 and out == ""  # nothing half-created


def test_create_start_show_stop(cli_env: dict[str, str]) -> None:
    code, out = _modq(
        *CREATE,
        "--weight",
        "control=0.8",
        "--weight",
        "challenger=0.2",
        "--shadow",
        "quiet=models:/modq-text/2",
        "--unit",
        "user_id",
        "--planned-sample-size",
        "300",
    )
    assert code == 0 and "created v2-vs-prod (draft)" in out
    code, out = _modq("ab", "start", "v2-vs-prod")
    assert code == 0 and "started v2-vs-prod" in out
    code, out = _modq("ab", "show", "v2-vs-prod", "--json")
    shown = json.loads(out)
    assert code == 0 and shown["state"] == "running" and shown["unit"] == "user_id"
    assert [(v["name"], v["weight"], v["shadow"]) for v in shown["variants"]] == [
        ("control", 0.8, False),
        ("challenger", 0.2, False),
        ("quiet", 0.0, True),
    ]
    assert shown["planned_sample_size"] == 300 and shown["created_by"] == "tester"
    code, out = _modq(*CREATE[:2], "second", *CREATE[3:])
    assert code == 0
    code, out = _modq("ab", "start", "second")
    assert code == 1 and "'v2-vs-prod' is running" in out
    code, out = _modq("ab", "stop", "v2-vs-prod", "--reason", "done")
    assert code == 0 and "stopped v2-vs-prod" in out
    code, out = _modq("ab", "show", "nosuch")
    assert code == 1 and "unknown_experiment" in out


def test_promote_moves_production_through_the_history_and_stops_the_experiment(
    cli_env: dict[str, str],
) -> None:
    assert _modq(*CREATE)[0] == 0
    assert _modq("ab", "start", "v2-vs-prod")[0] == 0
    code, out = _modq("ab", "promote", "v2-vs-prod", "challenger")
    assert code == 0 and "modq-text@production: v1 → v2" in out and "stopped v2-vs-prod" in out
    code, out = _modq("model", "history", "modq-text")
    assert code == 0 and "A/B v2-vs-prod: challenger won" in out.splitlines()[-1]
    code, out = _modq("ab", "show", "v2-vs-prod", "--json")
    assert json.loads(out)["state"] == "stopped"
    assert "promoted challenger (v2)" in json.loads(out)["stop_reason"]
    code, out = _modq("ab", "promote", "v2-vs-prod", "nobody")
    assert code == 1 and "no variant 'nobody'" in out


def test_the_sample_size_can_be_planned_from_the_effect_to_detect(cli_env: dict[str, str]) -> None:
    from experiments.analysis import planned_sample_size_for

    code, out = _modq(*CREATE, "--mde", "0.1", "--baseline", "0.6", "--action-rate", "0.2")
    assert code == 0, out
    code, out = _modq("ab", "show", "v2-vs-prod", "--json")
    reviewed_actioned = planned_sample_size_for(0.6, 0.1)
    assert json.loads(out)["planned_sample_size"] == math.ceil(reviewed_actioned / 0.2)
    code, out = _modq(*CREATE[:2], "other", *CREATE[3:], "--mde", "0.1", "--baseline", "0.6")
    assert code == 1 and "go together" in out


def test_a_report_before_any_traffic_says_so(cli_env: dict[str, str], tmp_path: Path) -> None:
    assert _modq(*CREATE)[0] == 0
    code, out = _modq("ab", "report", "v2-vs-prod", "--out", str(tmp_path / "r"))
    assert code == 0, out
    assert "insufficient data" in out and "no assignments yet" in out
    assert (tmp_path / "r" / "report.md").is_file()
    code, out = _modq("ab", "report", "nosuch")
    assert code == 1 and "unknown_experiment" in out
