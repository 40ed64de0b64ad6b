"""An experiment from creation to promotion, as the README shows it, through the real queue:

production is a model that over-flags (the real model with its heads shifted +3); the
challenger is the real model. Human-labelled held-out comments (the `insults` test split) go
through a real worker, their true labels come back as a review CSV, and the report must find
the planted difference: the challenger is truly more precise. Promoting it moves production.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tasks import moderate, moderate_many
from tasks.control import broadcast_model_refresh
from tests.cli.runner import modq as _modq
from tests.workers import flush_private_redis, running_worker

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TEXTS_PER_RUN = 1000


@pytest.fixture
def flow_env(cli_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """The CLI environment on an empty private broker."""
    flush_private_redis()
    yield cli_env
    flush_private_redis()


def _labelled_comments() -> list[tuple[str, str, bool]]:
    """(content_id, text, is_insult) from the human-labelled held-out split, seeded sample."""
    from training.evaluate import held_out_examples

    rows = [e for e in held_out_examples() if e.source == "insults"]
    random.Random(7).shuffle(rows)
    return [
        (f"flow-{i}", e.text, bool(e.labels["harassment"]))
        for i, e in enumerate(rows[:TEXTS_PER_RUN])
    ]


@pytest.fixture(scope="module")
def overflagging_model_dir(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real model with every head's logit shifted +3: it flags far more, less precisely.
    (+1.5 planted too small a gap for the calibrated default model and policy: p ~ 0.01.)"""
    from tests.model_variants import make_variant

    return make_variant(model_dir, tmp_path_factory.mktemp("overflagging"), bias_shift=3.0)


def test_an_experiment_from_creation_to_promotion(
    flow_env: dict[str, str], model_dir: Path, overflagging_model_dir: Path, tmp_path: Path
) -> None:
    # production over-flags (v1 = shifted heads); the challenger is the real model (v2)
    assert _modq("model", "register", str(overflagging_model_dir))[0] == 0
    assert _modq("model", "register", str(model_dir))[0] == 0
    promote = ("model", "promote", "modq-text", "1", "--force", "--reason", "incumbent")
    assert _modq(*promote)[0] == 0  # the shifted variant has no calibrated policy

    worker_env = {
        **flow_env,
        "MODQ_MODEL_URI": "models:/modq-text@production",
        "MODQ_MODEL_POLL_INTERVAL_S": "0",
        "MODQ_MAX_WAIT_MS": "10",
    }
    with running_worker(worker_env, log_dir=tmp_path, threads=8):
        code, out = _modq(
            "ab", "create", "precise",
            "--variant", "control=models:/modq-text@production",
            "--variant", "challenger=models:/modq-text/2",
            "--weight", "control=0.5", "--weight", "challenger=0.5",
            "--planned-sample-size", "400",
            "--primary", "precision",
            "--guardrail", "none",  # it trades recall for precision (recall -38%)
            "--description", "does the unshifted model flag more precisely?",
        )  # fmt: skip
        assert code == 0, out
        code, out = _modq("ab", "start", "precise")
        assert code == 0 and "notified 1 worker(s)" in out, out

        comments = _labelled_comments()
        batches = [comments[i : i + 100] for i in range(0, len(comments), 100)]
        pending = [
            moderate_many.delay(items=[{"content_id": c, "content": t} for c, t, _ in batch])
            for batch in batches
        ]
        results = [r for p in pending for r in p.get(timeout=300)]
        assert {r["variant"] for r in results} == {"control", "challenger"}

        reviews = tmp_path / "reviews.csv"
        with reviews.open("w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["content_id", "label"])
            for content_id, _, insult in comments:
                writer.writerow([content_id, "violation" if insult else "safe"])
        code, out = _modq("review", "import", str(reviews))
        assert code == 0, out

        code, out = _modq("ab", "audit-sample", "precise", "--share", "0.2")
        assert code == 0 and out.splitlines()[0] == "content_id,label", out
        audit = [line.split(",")[0] for line in out.splitlines()[1:]]
        allowed = [r["content_id"] for r in results if r["decision"] == "allow"]
        assert set(audit) <= set(allowed) and 0.1 * len(allowed) < len(audit) < 0.3 * len(allowed)

        report_dir = tmp_path / "report"
        code, out = _modq("ab", "report", "precise", "--out", str(report_dir))
        assert code == 0, out
        analysis = json.loads((report_dir / "analysis.json").read_text())
        assert (report_dir / "report.md").is_file()
        assert list(report_dir.glob("*.png")), "the report comes with plots"
        _assert_challenger_found_more_precise(analysis)

        code, out = _modq("ab", "promote", "precise", "challenger")
        assert code == 0 and "modq-text@production: v1 → v2" in out, out
        broadcast_model_refresh()
        after = moderate.delay(content_id="after-promotion", content=comments[0][1]).get(timeout=60)
        assert after["model_version"] == "2" and after["variant"] is None
    code, out = _modq("ab", "show", "precise", "--json")
    assert json.loads(out)["state"] == "stopped"


def _assert_challenger_found_more_precise(analysis: dict[str, Any]) -> None:
    assert analysis["srm_alarm"] is False  # a 50/50 split that holds
    assert analysis["planned_sample_size_reached"] is True
    arms = {arm["name"]: arm for arm in analysis["arms"]}
    assert arms["control"]["units"] >= 400 and arms["challenger"]["units"] >= 400
    assert (
        analysis["excluded_after_freeze"] + sum(a["posts"] for a in arms.values()) == TEXTS_PER_RUN
    )
    assert all(arm["reviewed"] == arm["posts"] for arm in arms.values())
    (precision,) = [
        c
        for c in analysis["comparisons"]
        if c["challenger"] == "challenger" and c["metric"] == "precision"
    ]
    assert precision["challenger_value"] > precision["control_value"] + 0.1
    assert precision["p_value"] < 0.01 and precision["significant"]  # frozen at 400 per arm
    assert precision["role"] == "primary" and precision["low"] > 0
    assert analysis["verdict"] == "ship"
    (challenger,) = analysis["challengers"]
    assert challenger["verdict"] == "ship" and "within its margin" in challenger["reason"]
