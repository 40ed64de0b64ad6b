"""`modq ab` as people type it: create (checked), start, show, stop, and promote a winner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.runner import modq as _modq


@pytest.fixture
def cli_env(cli_env: dict[str, str], model_dir: Path, variant_model_dir: Path) -> dict[str, str]:
    """The CLI environment with the real model as v1 (production) and its variant as v2."""
    for folder in (model_dir, variant_model_dir):
        assert _modq("model", "register", str(folder))[0] == 0
    promote = ("model", "promote", "modq-text", "1", "--force", "--reason", "test fixture")
    assert _modq(*promote)[0] == 0  # the test's policy folder calibrates neither version
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


def test_promote_refuses_a_variant_without_a_ship_verdict(cli_env: dict[str, str]) -> None:
    """Issue 14, case 5: `ab promote` did not look at the verdict."""
    assert _modq(*CREATE)[0] == 0
    assert _modq("ab", "start", "v2-vs-prod")[0] == 0
    code, out = _modq("ab", "promote", "v2-vs-prod", "challenger")
    assert code == 1 and "no ship verdict (keep running" in out and "--force" in out
    code, out = _modq("model", "history", "modq-text")
    assert "v2-vs-prod" not in out  # nothing moved
    code, out = _modq("ab", "promote", "v2-vs-prod", "challenger", "--force")
    assert code == 1 and "--force needs --reason" in out


def test_a_forced_promotion_moves_production_and_is_recorded(cli_env: dict[str, str]) -> None:
    assert _modq(*CREATE)[0] == 0
    assert _modq("ab", "start", "v2-vs-prod")[0] == 0
    code, out = _modq(
        "ab", "promote", "v2-vs-prod", "challenger", "--force", "--reason", "legal deadline"
    )
    assert code == 0 and "FORCED" in out and "modq-text@production: v1 → v2" in out, out
    code, out = _modq("model", "history", "modq-text")
    last = out.splitlines()[-1]
    assert "FORCED without a ship verdict (keep running" in last and "legal deadline" in last
    code, out = _modq("ab", "show", "v2-vs-prod", "--json")
    shown = json.loads(out)
    assert shown["state"] == "stopped" and "promoted challenger (v2)" in shown["stop_reason"]
    assert shown["forced_promotion"].startswith("tester: A/B v2-vs-prod: challenger FORCED")
    assert "legal deadline" in shown["forced_promotion"]
    code, out = _modq("ab", "promote", "v2-vs-prod", "nobody")
    assert code == 1 and "no variant 'nobody'" in out


def test_the_rule_and_the_size_are_declared_at_create(cli_env: dict[str, str]) -> None:
    from experiments.planner import PlanInputs, plan

    code, out = _modq(
        *CREATE,
        "--primary", "precision",
        "--guardrail", "latency_p95_ms=0.1",
        "--guardrail", "action_rate=0.2:decrease",
        "--mde", "0.1", "--baseline", "0.6", "--action-rate", "0.2",
        "--challenger-action-rate", "0.12", "--review-share", "0.5",
        "--max-posts", "20", "--icc", "0.16",
    )  # fmt: skip
    assert code == 0, out
    assert "decides on: precision must increase; guardrails: latency_p95_ms +10%" in out
    shown = json.loads(_modq("ab", "show", "v2-vs-prod", "--json")[1])
    assert shown["decision_rule"]["primary"] == "precision"
    assert shown["decision_rule"]["guardrails"][1] == {
        "metric": "action_rate",
        "margin": 0.2,
        "direction": "decrease",
    }
    expected = plan(PlanInputs("precision", (0.6, 0.7), (0.2, 0.12), (0.5, 0.5), 0.5, 1, 20, 0.16))
    assert shown["planned_sample_size"] == expected.units_smallest_arm
    code, out = _modq(*CREATE[:2], "other", *CREATE[3:], "--mde", "0.1", "--baseline", "0.6")
    assert code == 1 and "go together" in out
    code, out = _modq(*CREATE[:2], "third", *CREATE[3:], "--primary", "action_rate")
    assert code == 1 and "declare its direction" in out
    code, out = _modq(*CREATE[:2], "fourth", *CREATE[3:], "--guardrail", "speed=0.1")
    assert code == 1 and "guardrail metric must be one of" in out


def test_a_report_before_any_traffic_says_so(cli_env: dict[str, str], tmp_path: Path) -> None:
    assert _modq(*CREATE)[0] == 0
    code, out = _modq("ab", "report", "v2-vs-prod", "--out", str(tmp_path / "r"))
    assert code == 0, out
    assert "**Verdict: keep running**" in out and "no assignments yet" in out
    assert (tmp_path / "r" / "report.md").is_file()
    code, out = _modq("ab", "report", "nosuch")
    assert code == 1 and "unknown_experiment" in out
