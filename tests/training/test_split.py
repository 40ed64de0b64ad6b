"""The split is fixed: a row's split is a function of its normalised text, and never moves."""

from collections import Counter

import pytest

from training.split import EVALUATION, TRAIN, VALIDATION, split_key, split_of

# Pinned: these rows' splits were recorded when the split was introduced. If this test fails,
# evaluation rows may have been trained on: revert the change to training/split.py.
PINNED = {
    "Nah I don't think he goes to usf, he lives around here though": EVALUATION,
    "d": EVALUATION,
    "c": VALIDATION,
    "f": VALIDATION,
    "You are an idiot": TRAIN,
    "Thanks, the lemon cake recipe turned out great!": TRAIN,
    "what is your account number?": TRAIN,
    "b": TRAIN,
}


@pytest.mark.parametrize(("text", "split"), PINNED.items())
def test_pinned_rows_keep_their_split(text, split):
    assert split_of(text) == split


def test_the_split_reads_the_normalised_text():
    assert split_key("  You   ARE\tan idiot ") == "you are an idiot"
    assert split_of("YOU ARE AN IDIOT") == split_of("you are an idiot") == TRAIN
    assert split_key("ｆｕｌｌｗｉｄｔｈ") == "fullwidth"  # NFKC


def test_the_split_is_ten_ten_eighty():
    counts = Counter(split_of(f"synthetic row {i}") for i in range(20_000))
    assert abs(counts[EVALUATION] / 20_000 - 0.10) < 0.01
    assert abs(counts[VALIDATION] / 20_000 - 0.10) < 0.01


@pytest.mark.long
@pytest.mark.slow
def test_packaged_rows_never_share_a_text_across_splits():
    from training.datasets import load_examples

    examples = load_examples()
    keys: dict[str, str] = {}
    for e in examples:
        assert keys.setdefault(split_key(e.text), e.split) == e.split
        if e.source != "insults":
            assert e.split == split_of(e.text)  # the hash alone decides
    sources = Counter(e.source for e in examples)
    assert sources["profanity"] > 180_000 and sources["sms"] > 4_400
    by_split = Counter(e.split for e in examples if e.source == "profanity")
    assert 0.09 < by_split[EVALUATION] / sources["profanity"] < 0.11
