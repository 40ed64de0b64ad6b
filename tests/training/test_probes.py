"""The probe sets against the real current model (models/current) under the policy it carries:
the report's structure, intervals, and that its figures are recomputed from the judgements
(and from the data files, read here on their own), and stable when judged again."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from policy.carried import carried_policy
from training.judge import Judgement, folder_judge
from training.probes import build_sets, run_probes
from training.probes.base import DATA_DIR
from training.probes.identity import sentences
from training.probes.runner import TARGET_ORDER

# ~3 min on 2 cores (every probe set through the real model); every build runs the probes too
pytestmark = [pytest.mark.slow, pytest.mark.long]

ENTRY_KEYS = {"value", "ci95", "n", "goal", "met", "details"}
RATE_TARGETS = ("evasion_clean", "identity", "hate", "languages", "email")  # Wilson intervals


@pytest.fixture(scope="module")
def rows() -> list[Any]:
    from training.evaluate import held_out_examples

    return held_out_examples()


@pytest.fixture(scope="module")
def judged(model_dir: Path, rows: list[Any]) -> tuple[dict[str, Any], dict[str, Judgement]]:
    """The report, and every judgement the real judge gave while making it."""
    policy = carried_policy(model_dir.resolve())
    assert policy is not None
    judge = folder_judge(model_dir.resolve(), policy)
    seen: dict[str, Judgement] = {}

    def recording(texts: Sequence[str]) -> list[Judgement]:
        out = judge(texts)
        seen.update(zip(texts, out, strict=True))
        return out

    return run_probes(recording, rows), seen


def test_report_structure_and_intervals(
    judged: tuple[dict[str, Any], dict[str, Judgement]],
) -> None:
    report, seen = judged
    assert report["texts"] == len(seen) > 2500
    targets = report["targets"]
    assert list(targets) == list(TARGET_ORDER)
    for name, entry in targets.items():
        assert set(entry) == ENTRY_KEYS, name
        assert entry["n"] > 0 and entry["goal"], name
        assert entry["met"] is None if name == "hate" else isinstance(entry["met"], bool)
        low, high = entry["ci95"]
        assert low <= high, name
        if name in RATE_TARGETS:
            assert low <= entry["value"] <= high, name
    assert {j.action for j in seen.values()} <= {"allow", "flag", "remove"}


def test_figures_recompute_from_the_judgements_and_the_data_files(
    judged: tuple[dict[str, Any], dict[str, Judgement]],
) -> None:
    report, seen = judged
    targets = report["targets"]
    # e-mail: the ham file read here on its own
    ham = [
        line.split("\t", 1)[1]
        for line in (DATA_DIR / "email_ham.txt").read_text().splitlines()
        if line.strip()
    ]
    removed = sum(seen[t].action == "remove" for t in ham)
    assert targets["email"]["n"] == len(ham) >= 150
    assert targets["email"]["value"] == pytest.approx(removed / len(ham), abs=1e-4)
    # languages: right, marked or silently wrong, per row of the CSV
    with open(DATA_DIR / "languages.csv", encoding="utf-8", newline="") as handle:
        table = list(csv.DictReader(handle))
    silent = 0
    for row in table:
        j = seen[row["text"]]
        right = j.actioned == (row["kind"] == "abusive")
        silent += not right and not j.marked
    assert targets["languages"]["value"] == pytest.approx(silent / len(table), abs=1e-4)
    # noise: the hand-written abuse alone
    with open(DATA_DIR / "abuse_short.csv", encoding="utf-8", newline="") as handle:
        short = [r["text"] for r in csv.DictReader(handle)]
    long_alone = targets["long_text"]["details"]["alone"]
    assert long_alone["n"] == targets["long_text"]["n"] >= 30
    noise_alone = targets["noise"]["details"]["alone"]
    assert noise_alone["hits"] == sum(seen[t].actioned for t in short)
    # hate: every hate text is a positive
    hate = next(s for s in build_sets([]) if s.name == "hate")
    assert targets["hate"]["value"] == pytest.approx(
        sum(seen[t].actioned for t in hate.texts) / len(hate.texts), abs=1e-4
    )


def test_judging_again_agrees(
    model_dir: Path, judged: tuple[dict[str, Any], dict[str, Judgement]]
) -> None:
    """The identity and hate texts judged again in a call of their own: int8 scores move a
    little with their batch-mates, so decisions may differ on a few texts, never more."""
    report, seen = judged
    sets = {s.name: s for s in build_sets([])}
    texts = [*sets["identity"].texts, *sets["hate"].texts]
    policy = carried_policy(model_dir.resolve())
    assert policy is not None
    again = folder_judge(model_dir.resolve(), policy)(texts)
    differ = sum(seen[t].actioned != j.actioned for t, j in zip(texts, again, strict=True))
    assert differ <= 0.03 * len(texts)
    term = report["targets"]["identity"]["details"]["terms"]["gay"]
    benign = [text for name, toxic, text in sentences() if name == "gay" and not toxic]
    assert term["n"] == len(benign) >= 10
    assert term["hits"] == sum(seen[t].actioned for t in benign)
