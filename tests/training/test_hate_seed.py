"""The hand-written hate seed set (training/data/hate_seed.csv) as a labelled source."""

import csv
from collections import Counter

from training.datasets import (
    COVERED_CATEGORIES,
    HATE_SEED_FILE,
    HUMAN_SOURCES,
    SOURCE_DESCRIPTIONS,
    SOURCES,
    UNKNOWN,
    hate_seed_examples,
    load_examples,
)
from training.split import EVALUATION, TRAIN, VALIDATION, split_key, split_of

HATE = {"violence": UNKNOWN, "adult": 0, "hate_speech": 1, "harassment": 1, "spam": 0}
BENIGN = dict.fromkeys(COVERED_CATEGORIES, 0)


def _file_labels() -> dict[str, str]:
    with HATE_SEED_FILE.open(encoding="utf-8", newline="") as handle:
        return {row["text"]: row["label"] for row in csv.DictReader(handle)}


def test_every_row_loads_with_its_labels_and_split():
    by_text = _file_labels()
    rows = list(hate_seed_examples())
    assert len(rows) == len(by_text) == 814
    for row in rows:
        assert row.source == "hate_seed"
        assert row.text and row.text == " ".join(row.text.split())
        assert row.split == split_of(row.text)
        assert row.labels == (HATE if by_text[row.text] == "hate" else BENIGN)
    assert Counter(by_text.values()) == {"hate": 408, "benign_identity": 406}


def test_split_counts_per_label_are_pinned():
    counts = Counter((r.split, r.labels["hate_speech"]) for r in hate_seed_examples())
    assert counts == {
        (TRAIN, 1): 319,
        (VALIDATION, 1): 43,
        (EVALUATION, 1): 46,
        (TRAIN, 0): 329,
        (VALIDATION, 0): 43,
        (EVALUATION, 0): 34,
    }


def test_known_rows_keep_their_labels():
    rows = {r.text: r.labels for r in hate_seed_examples()}
    assert rows["Their kind should not be allowed to vote or hold office"] == HATE
    assert rows["Trans rights are human rights #equality"] == BENIGN
    counter_speech = "No religion makes someone less human"
    assert rows[counter_speech] == BENIGN


def test_no_duplicate_texts_and_none_shared_with_other_sources():
    keys = [split_key(r.text) for r in hate_seed_examples()]
    assert len(keys) == len(set(keys))
    others = {split_key(e.text) for e in load_examples(s for s in SOURCES if s != "hate_seed")}
    assert not others & set(keys)
    loaded = Counter(e.source for e in load_examples())
    assert loaded["hate_seed"] == 814


def test_it_is_a_registered_hand_written_source():
    assert "hate_seed" in SOURCES and "hate_seed" in SOURCE_DESCRIPTIONS
    assert "hate_seed" not in HUMAN_SOURCES  # like `seed`: written by the project
