"""Disguise transforms for the evasion set, written here from scratch (never from modq's
normaliser or augmenter tables): separators, masks, look-alike letters from Unicode's
confusables data (UTS #39, the ``confusable-homoglyphs`` package's ``confusables.json``),
accented letters named by ``unicodedata``, dropped vowels, digit and symbol swaps,
zero-width characters and appended junk.

Each family rewrites the chosen words of a text (``disguise``); ``junk`` appends tokens.
"""

from __future__ import annotations

import functools
import json
import random
import re
import unicodedata
from collections.abc import Callable, Collection
from pathlib import Path

WordTransform = Callable[[str, random.Random], str]

WORD = re.compile(r"[A-Za-z]+")
VOWELS = frozenset("aeiouAEIOU")
EMOJI = ("😀", "🔥", "💀", "👉", "🙃", "✨")
ZERO_WIDTH = "\u200b"
# symbols people type for letters (written for this probe set)
LEET_SYMBOLS = {"a": "@", "s": "$", "i": "!", "o": "0", "e": "3", "t": "7", "b": "8", "g": "9"}
JUNK_TOKENS = ("lol", "xq7", "zzz", "MARKERq2", "asdf", "k", "...", "#tbt", "ok")


def _dots(word: str, rng: random.Random) -> str:
    return ".".join(word)


def _hyphens(word: str, rng: random.Random) -> str:
    return "-".join(word)


def _emoji(word: str, rng: random.Random) -> str:
    return rng.choice(EMOJI).join(word)


def _zero_width(word: str, rng: random.Random) -> str:
    return ZERO_WIDTH.join(word)


def _spaced(word: str, rng: random.Random) -> str:
    return " ".join(word)


def _split(word: str, rng: random.Random) -> str:
    if len(word) < 4:
        return word
    cut = rng.randint(2, len(word) - 2)
    return word[:cut] + " " + word[cut:]


def _drop_vowels(word: str, rng: random.Random) -> str:
    kept = word[0] + "".join(c for c in word[1:] if c not in VOWELS)
    return kept if len(kept) >= 2 else word


def _one_for_l(word: str, rng: random.Random) -> str:
    return word.replace("l", "1").replace("L", "1")


def _leet(word: str, rng: random.Random) -> str:
    return "".join(LEET_SYMBOLS.get(c.lower(), c) for c in word)


def _asterisks(word: str, rng: random.Random) -> str:
    if len(word) < 3:
        return word
    return word[0] + "*" * (len(word) - 2) + word[-1]


@functools.cache
def confusables() -> dict[str, tuple[str, ...]]:
    """Per ASCII letter, its look-alikes in UTS #39's confusables: single letters of another
    script that NFKC does not fold back to an ASCII letter (so a plain NFKC step cannot undo
    them), e.g. Cyrillic, Greek, Armenian, Cherokee and IPA letters."""
    import confusable_homoglyphs

    path = Path(confusable_homoglyphs.__file__).resolve().parent / "confusables.json"
    table = json.loads(path.read_text(encoding="utf-8"))
    out: dict[str, tuple[str, ...]] = {}
    for letter in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ":
        looks = []
        for entry in table.get(letter, []):
            char = entry["c"]
            if len(char) != 1 or not unicodedata.category(char).startswith("L"):
                continue
            folded = unicodedata.normalize("NFKC", char)
            if folded.isascii():
                continue
            looks.append(char)
        if looks:
            out[letter] = tuple(sorted(set(looks)))
    return out


def _swap_half(word: str, rng: random.Random, table: dict[str, tuple[str, ...]]) -> str:
    """Half the letters of ``word`` that ``table`` has (at least one) swapped for one of theirs."""
    positions = [i for i, c in enumerate(word) if c in table]
    if not positions:
        return word
    chosen = set(rng.sample(positions, max(1, len(positions) // 2)))
    return "".join(rng.choice(table[c]) if i in chosen else c for i, c in enumerate(word))


def _homoglyphs(word: str, rng: random.Random) -> str:
    return _swap_half(word, rng, confusables())


@functools.cache
def accented() -> dict[str, tuple[str, ...]]:
    """Per ASCII lower-case letter, the Latin letters ``unicodedata`` names after it with a
    mark (``LATIN SMALL LETTER A WITH ...``), from the Latin-1 and Latin Extended blocks."""
    out: dict[str, list[str]] = {}
    for code in range(0x00C0, 0x0250):
        name = unicodedata.name(chr(code), "")
        match = re.fullmatch(r"LATIN SMALL LETTER ([A-Z]) WITH .+", name)
        if match:
            out.setdefault(match.group(1).lower(), []).append(chr(code))
    return {letter: tuple(chars) for letter, chars in out.items()}


def _diacritics(word: str, rng: random.Random) -> str:
    return _swap_half(word, rng, accented())


FAMILIES: dict[str, WordTransform] = {
    "dots_between_letters": _dots,
    "hyphens_between_letters": _hyphens,
    "emoji_between_letters": _emoji,
    "confusable_letters": _homoglyphs,
    "diacritics": _diacritics,
    "dropped_vowels": _drop_vowels,
    "one_for_l": _one_for_l,
    "split_words": _split,
    "leet_symbols": _leet,
    "asterisk_masks": _asterisks,
    "zero_width": _zero_width,
    "spaced_letters": _spaced,
}
JUNK_FAMILY = "appended_junk"
FAMILY_NAMES: tuple[str, ...] = (*FAMILIES, JUNK_FAMILY)


def chosen_words(text: str, lexicon: Collection[str], longest: int = 3) -> set[str]:
    """The words to disguise: every word in ``lexicon`` (lower case) and the ``longest``
    longest words of three letters or more."""
    words = [w for w in WORD.findall(text) if len(w) >= 3]
    picked = {w for w in words if w.lower() in lexicon}
    picked.update(sorted(set(words), key=lambda w: (-len(w), w))[:longest])
    return picked


def disguise(text: str, family: str, rng: random.Random, lexicon: Collection[str]) -> str:
    """``text`` under ``family``: the chosen words rewritten, or junk appended."""
    if family == JUNK_FAMILY:
        return text + " " + " ".join(rng.choice(JUNK_TOKENS) for _ in range(rng.randint(2, 4)))
    transform = FAMILIES[family]
    words = chosen_words(text, lexicon)
    return WORD.sub(lambda m: transform(m.group(), rng) if m.group() in words else m.group(), text)
