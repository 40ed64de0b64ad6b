"""Training-time augmentation: seeded, label-preserving, and each family does what it says."""

import random

import pytest

from training.augment import (
    BENIGN_IDENTITY_TEMPLATES,
    IDENTITY_TERMS,
    add_noise,
    augment,
    benign_identity_sentences,
    drop_vowels,
    identity_swap,
    mask,
    names_identity,
    salient_words,
    separate,
    split_word,
)
from training.datasets import COVERED_CATEGORIES, Example

TOXIC = {c: 0 for c in COVERED_CATEGORIES} | {"harassment": 1}
CLEAN = {c: 0 for c in COVERED_CATEGORIES}
ROWS = [
    Example("you are a stupid idiot", dict(TOXIC), "profanity", "train"),
    Example("shut up you idiot loser", dict(TOXIC), "profanity", "train"),
    Example("thanks for fixing the article", dict(CLEAN), "profanity", "train"),
    Example("gay people are welcome here", dict(CLEAN), "profanity", "train"),
    Example("what a muslim idiot", dict(TOXIC), "profanity", "train"),
    Example("see you at the meeting tomorrow", dict(CLEAN), "profanity", "train"),
] * 5
SALIENCY = salient_words(
    [e.text for e in ROWS], [e.labels["harassment"] == 1 for e in ROWS], min_count=1
)


def test_salient_words_lean_towards_the_offensive_rows():
    assert SALIENCY["idiot"] > 1.0 > SALIENCY["thanks"]


def test_augmentation_is_seeded_and_keeps_labels():
    rows = list(range(len(ROWS)))
    first = augment(ROWS, rows, SALIENCY, copies=20, identity_copies=5, seed=3)
    again = augment(ROWS, rows, SALIENCY, copies=20, identity_copies=5, seed=3)
    other = augment(ROWS, rows, SALIENCY, copies=20, identity_copies=5, seed=4)
    assert first == again
    assert [a.text for a in first] != [a.text for a in other]
    for made in first:
        if made.origin >= 0:
            assert made.labels == ROWS[made.origin].labels
            assert made.text != ROWS[made.origin].text
        else:
            assert made.transform == "benign_identity" and made.labels == CLEAN
    assert {a.transform for a in first} >= {"identity_swap", "benign_identity"}


@pytest.mark.parametrize("seed", range(20))
def test_word_transforms_change_the_word_but_not_beyond_recognition(seed):
    rng = random.Random(seed)
    word = "stupidity"
    assert set(drop_vowels(word, rng)) <= set(word) and drop_vowels(word, rng) != word
    masked = mask(word, rng)
    assert len(masked) == len(word) and masked != word and masked[0] == "s"
    split = split_word(word, rng)
    assert split != word and "".join(ch for ch in split if ch.isalpha()) == word
    assert "".join(ch for ch in separate(word, rng) if ch.isalpha()) == word


def test_noise_keeps_the_text_and_adds_to_it():
    rng = random.Random(1)
    for _ in range(20):
        noisy = add_noise("I will hurt you", rng)
        assert "I will hurt you" in noisy and len(noisy) > len("I will hurt you")


def test_identity_swap_changes_the_term_within_its_group():
    rng = random.Random(0)
    swapped = identity_swap("Gay people are welcome", rng)
    assert swapped is not None and not swapped.lower().startswith("gay ")
    assert swapped.split()[0].lower() in IDENTITY_TERMS
    assert identity_swap("nothing to see here", rng) is None
    assert names_identity("a Muslim family") and not names_identity("a blackbird")


def test_benign_identity_sentences_name_every_term():
    sentences = benign_identity_sentences()
    assert len(sentences) == len(BENIGN_IDENTITY_TEMPLATES) * len(IDENTITY_TERMS)
    for term in IDENTITY_TERMS:
        assert any(term in s.lower() for s in sentences)
