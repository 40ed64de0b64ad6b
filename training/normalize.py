"""Evasion normalisation, inside the model's ``tokenizer.json``.

People who post abuse hide it: zero-width characters inside words, homoglyphs (Cyrillic "а"
for Latin "a"), leetspeak ("1d10t"), spaced letters ("i d i o t") and repeated characters
("idiooooot"). The normaliser undoes these before the text is split into word pieces. It is a
``tokenizers`` normaliser written into the model folder's ``tokenizer.json``, so every backend
that tokenises with that file (ONNX, PyTorch, training) reads the same normalised text, and the
worker never changes the text it stores: normalisation exists only on the way to the model.
"""

from __future__ import annotations

from typing import Any

# Cyrillic and Greek letters that render like Latin ones (lower case: the normaliser lowercases
# first). Not exhaustive: the common substitutions of abuse that evades filters.
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
ZERO_WIDTH = "[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]"
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def evasion_normalizer(base: Any) -> Any:
    """A ``tokenizers`` normaliser: NFKC, zero-width removal, ``base`` (the encoder's own: BERT
    clean-up + lower case), homoglyphs, leetspeak, runs of 3+ letters squeezed to one, single
    letters separated by spaces joined."""
    from tokenizers import Regex, normalizers

    steps: list[Any] = [normalizers.NFKC(), normalizers.Replace(Regex(ZERO_WIDTH), "")]
    if base is not None:
        steps.append(base)
    steps += [normalizers.Replace(glyph, letter) for glyph, letter in HOMOGLYPHS.items()]
    for symbol, letter in LEET:
        escaped = "\\" + symbol if symbol == "!" else symbol
        steps.append(normalizers.Replace(Regex(f"(?<=[a-z]){escaped}|{escaped}(?=[a-z])"), letter))
    steps.append(
        normalizers.Replace(Regex("(?<=[a-z])\\$(?=[a-z])|(?<![a-z0-9])\\$(?=[a-z]{2})"), "s")
    )
    steps.append(normalizers.Replace(Regex("(?<=[a-z])@(?=[a-z])"), "a"))
    steps += [normalizers.Replace(Regex(f"{c}{{3,}}"), c) for c in LETTERS]
    steps.append(normalizers.Replace(Regex("(?<=\\b[a-z]) (?=[a-z]\\b)"), ""))
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
