"""Evasion normalisation, inside the model's ``tokenizer.json``.

People who post abuse hide it: zero-width characters inside words, look-alike letters from other
scripts (Cyrillic "а" for Latin "a", mathematical or Cherokee letters), leetspeak ("1d10t"),
letters separated by spaces or symbols ("i d i o t", "i.d.i.o.t", "i🙂d🙂i🙂o🙂t") and repeated
characters ("idiooooot"). The normaliser undoes these before the text is split into word pieces.
It is a ``tokenizers`` normaliser written into the model folder's ``tokenizer.json``, so every
backend that tokenises with that file (ONNX, PyTorch, training) reads the same normalised text,
its offsets still point into the original text, and the worker never changes the text it stores:
normalisation exists only on the way to the model.

Look-alikes come from Unicode's confusables data (UTS #39, as the ``confusable_homoglyphs``
package ships it): every single non-ASCII character whose skeleton is a Latin letter becomes that
letter, one regex character class per letter. What no normaliser can undo (dropped vowels,
masks like ``f*ck``, split words, appended junk) is taught by augmentation
(``training.augment``).
"""

from __future__ import annotations

import json
import unicodedata
from functools import cache
from typing import Any

# Cyrillic and Greek letters that render like Latin ones (lower case: the normaliser lowercases
# first). Kept beside the confusables data, which covers them (a few are not in it).
HOMOGLYPHS: dict[str, str] = {
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "і": "i", "ї": "i", "ј": "j", "ѕ": "s", "ԁ": "d",
    "ԛ": "q", "ԝ": "w", "ɡ": "g", "ı": "i", "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i",
    "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w",
}  # fmt: skip
# digits and symbols read as letters only next to a letter, so numbers stay numbers
LEET: tuple[tuple[str, str], ...] = (
    ("1", "i"), ("!", "i"), ("3", "e"), ("4", "a"), ("0", "o"), ("5", "s"), ("7", "t"),
)  # fmt: skip
# what follows a number without being leet: ordinals and units ("4th", "3km", "5s"), "3RR"
NUMBER_SUFFIXES = (
    "(?:st|nd|rd|th|s|am|pm|k|m|kg|km|mm|cm|ml|min|mins|h|hr|hrs|x|d|g|gb|mb|mph|yr|yrs|ft|lb"
    "|lbs|v|w|px|rr)"
)
_LEET_CLASS = {"i": "1", "e": "3", "a": "4", "o": "0", "s": "5", "t": "7"}  # one step each
# zero-width and format characters, variation selectors, emoji skin-tone modifiers
ZERO_WIDTH = (
    "[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufe0e\ufe0f\ufeff\U0001f3fb-\U0001f3ff]"
)
LETTERS = "abcdefghijklmnopqrstuvwxyz"
SQUEEZE = r"(?<=([a-z]))\1\1+"  # the 2nd, 3rd, ... of 3+ equal letters: "idiooooot" -> "idiot"
# a separator between letters: one character that is no letter, digit or space
SEPARATOR = r"[^\p{L}\p{N}\s]"
_A = "[a-z]"
_ALNUM = r"[\p{L}\p{N}]"
# the separator between two single letters of a run of three or more (i.d.i.o.t, i-d-i-o-t): the
# letter before stands alone (no letter or digit before it) and so does the one after; either a
# third single letter follows, or two came before. "e.g.", "a.m." and "well-known" stay.


def _separated_letters(separator: str, alone: str) -> str:
    """The ``separator`` between two single letters of a run of three or more: the letter
    before has no ``alone`` character before it, the one after none after it; either a third
    single letter follows, or two came before."""
    a, s = _A, separator
    return (
        f"(?<={a})(?<!{alone}{a}){s}(?={a}{s}{a}(?!{alone}))"
        f"|(?<={a}{s}{a})(?<!{alone}{a}{s}{a}){s}(?={a}(?!{alone}))"
    )


SEPARATED_LETTERS = _separated_letters(SEPARATOR, _ALNUM)
# by single spaces: a contraction's letter ("it's a") does not stand alone
SPACED_LETTERS = _separated_letters(" ", r"[\p{L}\p{N}'’]")
# "1" read as "l" where "i" is unlikely: "11" next to a letter (ki11), between vowels (foo1ish),
# before a vowel at a word's start (1oser), after a vowel at a word's end (fai1). ("|" stays:
# wiki markup puts it between words.)
ONE_AS_L: tuple[tuple[str, str], ...] = (
    (r"(?<=[a-z])11(?![\p{N}]|th)|(?<!\p{N})11(?=[a-z])(?!th)", "ll"),
    (
        r"(?<=[aeiou])1(?=[aeiou])|(?<![\p{L}\p{N}])1(?=[aeou][a-z]{2})"
        r"|(?<=[a-z][aeiou])1(?![\p{L}\p{N}])",
        "l",
    ),
)


def _leet_pattern(symbols: str) -> str:
    """A leet symbol after a letter, or before one unless it starts a number with a unit or
    an ordinal ("4th", "3km", "10pm" stay; "5hit", "n00b" do not)."""
    return (
        f"(?<=[a-z]){symbols}|(?<!\\p{{N}}){symbols}(?=[a-z])(?!{NUMBER_SUFFIXES}\\b)"
        f"|(?<=[a-z]\\p{{N}}*){symbols}(?=[a-z])"
    )


def _confusables_file() -> str:
    import importlib.util

    spec = importlib.util.find_spec("confusable_homoglyphs")
    if spec is None or spec.origin is None:
        raise RuntimeError(
            "the evasion normaliser needs the confusable_homoglyphs package (UTS #39 data)"
        )
    return str(spec.origin).rsplit("/", 1)[0] + "/confusables.json"


@cache
def confusable_letters() -> dict[str, str]:
    """``{character: latin letter}``: every single non-ASCII character that UTS #39 lists as
    confusable with a Latin letter (its lower- and upper-case forms, and their NFKC forms),
    plus ``HOMOGLYPHS``. ``I`` and ``l`` share a skeleton: a capital look-alike becomes ``i``."""
    with open(_confusables_file(), encoding="utf-8") as handle:
        data: dict[str, list[dict[str, str]]] = json.load(handle)
    out: dict[str, str] = {}

    def add(source: str, letter: str) -> None:
        if letter == "l" and source.isupper():
            letter = "i"  # a capital I look-alike (UTS #39 gives I and l one skeleton)
        for form in (source, unicodedata.normalize("NFKC", source)):
            for char in {form, form.lower()}:
                if len(char) == 1 and ord(char) > 127 and char not in out and _letter_like(char):
                    out[char] = letter

    for glyph, letter in HOMOGLYPHS.items():
        add(glyph, letter)
    for cased in (str.lower, str.upper):
        for letter in LETTERS:
            for entry in data.get(cased(letter), []):
                add(entry["c"], letter)
    return out


def _letter_like(char: str) -> bool:
    """A letter, a letter-number (Roman numerals) or a maths symbol: never another script's
    digit, a combining mark or a box-drawing line."""
    category = unicodedata.category(char)
    return category[0] == "L" or category in ("Nl", "Sm")


def _character_class(chars: list[str]) -> str:
    escaped = "".join(f"\\x{{{ord(c):x}}}" for c in sorted(chars))
    return f"[{escaped}]"


def evasion_normalizer(base: Any) -> Any:
    """A ``tokenizers`` normaliser: NFKC, zero-width removal, UTS #39 look-alikes to Latin,
    ``base`` (the encoder's own: BERT clean-up + lower case), letters joined across single
    separators, ``1`` as ``l`` where ``i`` is unlikely, leetspeak, runs of 3+ letters squeezed
    to one, three or more single letters separated by single spaces joined."""
    from tokenizers import Regex, normalizers

    steps: list[Any] = [normalizers.NFKC(), normalizers.Replace(Regex(ZERO_WIDTH), "")]
    by_letter: dict[str, list[str]] = {}
    for char, letter in confusable_letters().items():
        by_letter.setdefault(letter, []).append(char)
    steps += [
        normalizers.Replace(Regex(_character_class(by_letter[letter])), letter)
        for letter in sorted(by_letter)
    ]
    if base is not None:
        steps.append(base)
    steps.append(normalizers.Replace(Regex(SEPARATED_LETTERS), ""))
    steps += [normalizers.Replace(Regex(pattern), letters) for pattern, letters in ONE_AS_L]
    for letter, symbols in _LEET_CLASS.items():
        pattern = _leet_pattern(symbols)
        if letter == "i":  # "!" inside a word only: "hello!" keeps its mark
            pattern += "|(?<=[a-z])!(?=[a-z])"
        steps.append(normalizers.Replace(Regex(pattern), letter))
    steps.append(
        normalizers.Replace(Regex("(?<=[a-z])\\$(?=[a-z])|(?<![a-z0-9])\\$(?=[a-z]{2})"), "s")
    )
    steps.append(normalizers.Replace(Regex("(?<=[a-z])@(?=[a-z])"), "a"))
    steps.append(normalizers.Replace(Regex(SQUEEZE), ""))
    steps.append(normalizers.Replace(Regex(SPACED_LETTERS), ""))
    return normalizers.Sequence(steps)


def with_evasion_normalizer(tokenizer: Any) -> Any:
    """``tokenizer`` (a ``tokenizers.Tokenizer``) with the evasion normaliser in front of the
    word-piece model (changed in place and returned)."""
    tokenizer.normalizer = evasion_normalizer(tokenizer.normalizer)
    return tokenizer


def load_model_tokenizer(path: str, max_length_tokens: int) -> Any:
    """The encoder's ``tokenizer.json`` with the evasion normaliser, truncating, unpadded."""
    from tokenizers import Tokenizer

    tokenizer = with_evasion_normalizer(Tokenizer.from_file(path))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_length_tokens)
    return tokenizer


__all__ = [
    "HOMOGLYPHS",
    "LEET",
    "LETTERS",
    "ZERO_WIDTH",
    "confusable_letters",
    "evasion_normalizer",
    "load_model_tokenizer",
    "with_evasion_normalizer",
]
