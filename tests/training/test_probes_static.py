"""The probe sets are written independently of what they test, and they can fail.

No model here: an AST check of the probe modules' imports, the disguise transforms on fixed
texts, and two real function judges (one allows everything, one reads keywords in the first
300 characters, as a truncating, non-normalising model would) whose failures the report must
show.
"""

from __future__ import annotations

import ast
import random
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import pytest

from training.judge import Judgement
from training.probes import build_sets, run_probes
from training.probes.evasion import lexicon
from training.probes.runner import TARGET_ORDER
from training.probes.transforms import FAMILY_NAMES, confusables, disguise

ROOT = Path(__file__).resolve().parents[2]
PROBE_FILES = [*sorted((ROOT / "training" / "probes").rglob("*.py")), ROOT / "training/judge.py"]
FORBIDDEN = {"training.normalize", "training.augment", "training.evasion"}
SENTENCE = "You are a stupid idiot and a worthless loser, shut up."


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.update(n for n in FORBIDDEN if n in node.value)  # importlib by name
    return names


def test_probe_modules_never_import_the_normaliser_or_augmenter() -> None:
    assert len(PROBE_FILES) >= 12
    for path in PROBE_FILES:
        names = _imports(path)
        found = {n for n in names if any(n == f or n.startswith(f + ".") for f in FORBIDDEN)}
        assert not found, f"{path.relative_to(ROOT)} imports {found}"


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_every_family_changes_the_text(family: str) -> None:
    rng = random.Random(0)
    changed = disguise(SENTENCE, family, rng, lexicon())
    assert changed != SENTENCE
    if family not in {"appended_junk", "split_words", "one_for_l"}:
        # the abusive words themselves no longer appear as typed
        assert "idiot" not in changed and "stupid" not in changed


def test_confusables_come_from_uts39_and_survive_nfkc() -> None:
    table = confusables()
    assert {"a", "e", "o", "i", "c", "p"} <= set(table)
    for letter, looks in table.items():
        for char in looks:
            assert not unicodedata.normalize("NFKC", char).isascii(), (letter, char)
    assert "\u0430" in table["a"]  # CYRILLIC SMALL LETTER A


def allow_all(texts: Sequence[str]) -> list[Judgement]:
    """A judge that lets everything through."""
    return [Judgement("allow", {"harassment": 0.0}) for _ in texts]


def keyword_head(texts: Sequence[str]) -> list[Judgement]:
    """A judge that removes a text when one of a few abuse words is typed plainly in its
    first 300 characters: no normalisation, truncation, no sense of language."""
    words = {"idiot", "stupid", "fuck", "bitch", "kill", "hurt", "moron", "loser", "shit"}
    out = []
    for text in texts:
        head = text[:300].lower().split()
        hit = any(w.strip(".,!?\"'") in words for w in head)
        tripped = ("harassment",) if hit else ()
        out.append(
            Judgement(
                "remove" if hit else "allow", {"harassment": float(hit)}, None, None, False, tripped
            )
        )
    return out


@pytest.fixture(scope="module")
def rows() -> list:
    from training.evaluate import held_out_examples

    return held_out_examples()


def test_a_judge_that_allows_everything_misses_the_targets(rows: list) -> None:
    report = run_probes(allow_all, rows)
    targets = report["targets"]
    assert list(targets) == list(TARGET_ORDER)
    assert targets["long_text"]["met"] is False
    assert targets["evasion"]["met"] is False
    assert targets["languages"]["met"] is False  # abusive texts allowed, none marked
    assert targets["languages"]["value"] == pytest.approx(0.5, abs=0.02)
    assert targets["evasion_clean"]["met"] is True  # nothing actioned, nothing wrongly
    assert targets["email"]["met"] is True and targets["email"]["value"] == 0


def test_a_truncating_keyword_judge_fails_long_text_and_evasion(rows: list) -> None:
    targets = run_probes(keyword_head, rows)["targets"]
    long_text = targets["long_text"]
    assert long_text["met"] is False
    start = long_text["details"]["start"]
    assert start["value"] > 0 and start["value"] == start["alone_same_texts"]["value"]
    assert long_text["details"]["end"]["value"] == 0  # and never past the first 300 chars
    evasion = targets["evasion"]
    assert evasion["met"] is False
    assert evasion["details"]["dots_between_letters"]["recall"]["value"] == 0
    assert evasion["details"]["dots_between_letters"]["plain_recall"]["value"] > 0.2


def test_sets_are_deterministic_and_sized(rows: list) -> None:
    first = [s.texts for s in build_sets(rows)]
    assert first == [s.texts for s in build_sets(rows)]
    sizes = {s.name: len(s.texts) for s in build_sets(rows)}
    assert sizes["languages"] >= 150 and sizes["email"] >= 180 and sizes["identity"] >= 500
    assert sum(sizes.values()) < 8000  # the whole run stays about a minute on 2 cores
