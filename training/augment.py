"""Training-time augmentation: transformed copies of training rows, with the same labels.

What the normaliser (``training.normalize``) cannot undo the model must learn: dropped vowels
("stpd"), masks ("f*ck", "f**k"), words split by a space or one symbol ("idi ot", "id.iot"),
leet the normaliser reads otherwise, and junk appended to a text ("… MARKERxq7", "… lol", an
emoji): noise must not buy a pass. Clean rows get the same transforms, so transformed clean text
does not start looking abusive. Identity terms get counterfactual copies (the term swapped for
another of its group, same labels) and benign sentences that mention them (clean labels), so an
identity word carries no toxicity by itself.

Everything is seeded: the same rows in give the same rows out. Which words a character-level
transform hits: in each text, the word most associated with the offensive rows of the training
data (by smoothed log-odds, ``salient_words``), else a random long word.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from training.datasets import COVERED_CATEGORIES, Example

AUGMENT_SEED = 29
_WORD = re.compile(r"[A-Za-z]{3,}")
VOWELS = "aeiouAEIOU"

# identity terms by group: a counterfactual copy swaps a term for another of the same group
IDENTITY_GROUPS: Mapping[str, tuple[str, ...]] = {
    "sexuality": ("gay", "lesbian", "queer", "bisexual", "straight", "heterosexual", "homosexual"),
    "gender": ("transgender", "trans", "nonbinary", "cisgender", "female", "male"),
    "race": ("white", "black", "asian", "latino", "hispanic", "african", "arab", "indian"),
    "religion": ("muslim", "christian", "jewish", "hindu", "buddhist", "atheist", "catholic"),
    "origin": ("mexican", "chinese", "american", "immigrant", "european", "african american"),
    "ability": ("deaf", "blind", "disabled", "autistic"),
    "age": ("old", "young", "elderly"),
}  # fmt: skip
IDENTITY_TERMS: tuple[str, ...] = tuple(t for group in IDENTITY_GROUPS.values() for t in group)
# benign sentences that mention a group (written for training; the checks use other sentences)
BENIGN_IDENTITY_TEMPLATES: tuple[str, ...] = (
    "I am {t}.",
    "I am a {t} person and I love my family.",
    "My neighbour is {t} and she grows tomatoes.",
    "Our new teacher is {t}.",
    "{T} people live all over the world.",
    "My best friend is {t}, we went hiking yesterday.",
    "The {t} community organised a food drive this weekend.",
    "He is proud to be {t}.",
    "Being {t} is just one part of who I am.",
    "A {t} author wrote my favourite book.",
    "We invited a {t} speaker to the conference.",
    "My cousin is {t} and works as a nurse.",
    "There are many {t} students at my school.",
    "She writes about {t} history for the local paper.",
    "The article interviewed several {t} families.",
    "Is it ok to say that I am {t}?",
    "My doctor is {t}.",
    "{T} and proud, have a nice day everyone.",
    "Thanks for the warm welcome, as a {t} person I felt at home.",
    "The museum has a new exhibit on {t} artists.",
    "{T} people are part of our neighbourhood.",
    "{T} people are welcome here.",
    "{T} people are doctors, teachers and engineers.",
    "{T} people are just people.",
    "Many {t} people are volunteers at the shelter.",
)
JUNK_WORDS: tuple[str, ...] = (
    "lol", "lmao", "haha", "ok", "thanks", "anyway", "today", "whatever", "cheers", "bro",
    "dude", "yes", "yeah", "hmm", "right", "please", "morning", "weekend", "coffee", "tbh",
    "ikr", "smh", "xd", ":)", ":D", ";)", "#tbt", "#blessed", "#news", "😂", "🙂", "👍", "🔥",
    "❤️", "💯", "🤣", "...", "!!!", "???", "http://t.co/a1b2", "@user",
)  # fmt: skip
SEPARATORS: tuple[str, ...] = (".", "-", "_", "*", "~", "·", "/", "+", ",", "🙂", "🔥", "❤", "|")
MASKS: tuple[str, ...] = ("*", "#", "@", "$", "%", "!", "-", "_", ".")
LEET_FOR: Mapping[str, str] = {
    "a": "4@", "e": "3", "i": "1!|", "o": "0", "s": "5$", "t": "7+", "l": "1|", "g": "9",
    "b": "8", "z": "2",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Augmented:
    """A transformed copy: its text, its labels (the original row's), which transform made it
    and the index of the row it came from (``-1`` for a written sentence)."""

    text: str
    labels: dict[str, int]
    transform: str
    origin: int


def salient_words(
    texts: Sequence[str], offensive: Sequence[bool], *, min_count: int = 10
) -> dict[str, float]:
    """Lower-cased words (3+ letters) with their smoothed log-odds of appearing in an offensive
    text rather than a clean one (positive: leans offensive)."""
    pos: Counter[str] = Counter()
    neg: Counter[str] = Counter()
    for text, label in zip(texts, offensive, strict=True):
        words = {w.lower() for w in _WORD.findall(text)}
        (pos if label else neg).update(words)
    n_pos = max(sum(1 for o in offensive if o), 1)
    n_neg = max(len(offensive) - n_pos, 1)
    out: dict[str, float] = {}
    for word in set(pos) | set(neg):
        if pos[word] + neg[word] < min_count:
            continue
        out[word] = math.log((pos[word] + 0.5) / n_pos) - math.log((neg[word] + 0.5) / n_neg)
    return out


def _target(text: str, saliency: Mapping[str, float], rng: random.Random) -> re.Match[str] | None:
    words = list(_WORD.finditer(text))
    if not words:
        return None
    best = max(words, key=lambda m: saliency.get(m.group().lower(), -99.0))
    if saliency.get(best.group().lower(), -99.0) > 1.0 and rng.random() < 0.8:
        return best
    longer = [m for m in words if len(m.group()) >= 4] or words
    return rng.choice(longer)


def drop_vowels(word: str, rng: random.Random) -> str:
    """Interior vowels dropped (all, or all but one): ``stupid`` -> ``stpd``."""
    inner = [i for i, ch in enumerate(word) if ch in VOWELS and i > 0]
    if not inner:
        return word
    keep = {rng.choice(inner)} if len(inner) > 1 and rng.random() < 0.3 else set()
    return "".join(ch for i, ch in enumerate(word) if i == 0 or i not in inner or i in keep)


def mask(word: str, rng: random.Random) -> str:
    """One or two interior letters (vowels first) masked: ``fuck`` -> ``f*ck`` / ``f**k``."""
    if len(word) < 3:
        return word
    inner = list(range(1, len(word) - 1))
    vowels = [i for i in inner if word[i] in VOWELS]
    first = rng.choice(vowels or inner)
    hidden = {first}
    if rng.random() < 0.4 and first + 1 < len(word) - 1:
        hidden.add(first + 1)
    symbol = rng.choice(MASKS)
    return "".join(symbol if i in hidden else ch for i, ch in enumerate(word))


def split_word(word: str, rng: random.Random) -> str:
    """One or two breaks inside the word, a space or a separator: ``idi ot``, ``id.iot``."""
    if len(word) < 4:
        return word
    cuts = sorted(rng.sample(range(1, len(word)), 2 if len(word) > 6 and rng.random() < 0.3 else 1))
    glue = " " if rng.random() < 0.5 else rng.choice(SEPARATORS)
    parts, last = [], 0
    for cut in cuts:
        parts.append(word[last:cut])
        last = cut
    parts.append(word[last:])
    return glue.join(parts)


def separate(word: str, rng: random.Random) -> str:
    """Every letter separated, by one symbol or a space, or by one symbol and spaces."""
    glue = rng.choice(SEPARATORS)
    if rng.random() < 0.25:
        glue = f" {glue} "
    return glue.join(word)


def leet(word: str, rng: random.Random) -> str:
    """About half the letters that have a leet form swapped for one of them."""
    out = []
    for ch in word:
        forms = LEET_FOR.get(ch.lower())
        out.append(rng.choice(forms) if forms and rng.random() < 0.5 else ch)
    return "".join(out)


WORD_TRANSFORMS: Mapping[str, Callable[[str, random.Random], str]] = {
    "drop_vowels": drop_vowels,
    "mask": mask,
    "split": split_word,
    "separate": separate,
    "leet": leet,
}


def _junk_token(rng: random.Random) -> str:
    """Random letters and digits, sometimes glued to a word or in capitals (``TAGqz7``)."""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    junk = "".join(rng.choice(alphabet) for _ in range(rng.randint(3, 10)))
    if rng.random() < 0.3:
        junk = rng.choice(("TAG", "ID", "REF", "CODE", "ITEM", "NOTE", "Xx", "zz")) + junk
    return junk.upper() if rng.random() < 0.15 else junk


def add_noise(text: str, rng: random.Random) -> str:
    """One to three junk words (random letters and digits, chat words, emoji, hashtags),
    appended (mostly) or put in front."""
    words = [
        _junk_token(rng) if rng.random() < 0.35 else rng.choice(JUNK_WORDS)
        for _ in range(rng.choice((1, 1, 1, 2, 3)))
    ]
    noise = " ".join(words)
    return f"{noise} {text}" if rng.random() < 0.2 else f"{text} {noise}"


def transform(
    text: str, saliency: Mapping[str, float], rng: random.Random
) -> tuple[str, str] | None:
    """``(new text, transform name)``: a character-level transform of one or two target words,
    junk noise, or both; ``None`` if the text has no word to transform."""
    roll = rng.random()
    if roll < 0.25:
        return add_noise(text, rng), "noise"
    name = rng.choice(sorted(WORD_TRANSFORMS))
    out = text
    for _ in range(1 if rng.random() < 0.7 else 2):
        target = _target(out, saliency, rng)
        if target is None:
            return None
        new = WORD_TRANSFORMS[name](target.group(), rng)
        out = out[: target.start()] + new + out[target.end() :]
    if out == text:
        return None
    if roll > 0.85:
        return add_noise(out, rng), f"{name}+noise"
    return out, name


_TERM = re.compile(r"\b(" + "|".join(sorted(IDENTITY_TERMS, key=len, reverse=True)) + r")\b", re.I)
_IDENTITY_WORDS = frozenset(w for t in IDENTITY_TERMS for w in t.split())
_LOWER_WORD = re.compile(r"[a-z]+")


def names_identity(text: str) -> bool:
    """Whether the text names an identity term (a quick word-set test before the regex)."""
    if _IDENTITY_WORDS.isdisjoint(_LOWER_WORD.findall(text.lower())):
        return False
    return _TERM.search(text) is not None


def _group_of(term: str) -> tuple[str, ...]:
    for group in IDENTITY_GROUPS.values():
        if term in group:
            return group
    raise KeyError(term)


def identity_swap(text: str, rng: random.Random) -> str | None:
    """The text with each identity term swapped for another of its group (case kept as far as
    the first letter), or ``None`` if it names none."""
    if _TERM.search(text) is None:
        return None

    def swap(match: re.Match[str]) -> str:
        term = match.group()
        other = rng.choice([t for t in _group_of(term.lower()) if t != term.lower()])
        return other.capitalize() if term[:1].isupper() else other

    return _TERM.sub(swap, text)


def benign_identity_sentences() -> list[str]:
    """Every benign template with every identity term."""
    out = []
    for template in BENIGN_IDENTITY_TEMPLATES:
        for term in IDENTITY_TERMS:
            out.append(template.format(t=term, T=term.capitalize()))
    return out


def augment(
    examples: Sequence[Example],
    rows: Sequence[int],
    saliency: Mapping[str, float],
    *,
    copies: int,
    identity_copies: int,
    seed: int = AUGMENT_SEED,
    benign_identity: bool = True,
) -> list[Augmented]:
    """Transformed copies of ``rows`` (indices into ``examples``): ``copies`` of them drawn at
    random (seeded), each transformed once (same labels); counterfactual identity copies of up
    to ``identity_copies`` rows that name an identity term (same labels); and, with
    ``benign_identity``, the benign identity sentences (every category 0)."""
    rng = random.Random(seed)
    out: list[Augmented] = []
    chosen = rng.sample(list(rows), min(copies, len(rows)))
    for index in sorted(chosen):
        example = examples[index]
        made = transform(example.text, saliency, rng)
        if made is not None:
            out.append(Augmented(made[0], dict(example.labels), made[1], index))
    naming = [i for i in rows if names_identity(examples[i].text)]
    for index in sorted(rng.sample(naming, min(identity_copies, len(naming)))):
        swapped = identity_swap(examples[index].text, rng)
        if swapped is not None:
            out.append(Augmented(swapped, dict(examples[index].labels), "identity_swap", index))
    if benign_identity:
        clean = {c: 0 for c in COVERED_CATEGORIES}
        out += [
            Augmented(t, dict(clean), "benign_identity", -1) for t in benign_identity_sentences()
        ]
    return out


def per_row_copies(
    examples: Sequence[Example],
    rows: Sequence[int],
    saliency: Mapping[str, float],
    *,
    each: int,
    seed: int = AUGMENT_SEED,
) -> list[Augmented]:
    """``each`` transformed copies of every row (same labels): the first has junk appended
    (``noise``), the others a random transform. For the rows of thin categories (a few hundred
    threats), so that no junk word and no spelling buys a pass."""
    rng = random.Random(seed)
    out: list[Augmented] = []
    for index in rows:
        example = examples[index]
        for copy in range(each):
            made = (
                (add_noise(example.text, rng), "noise")
                if copy == 0
                else transform(example.text, saliency, rng)
            )
            if made is not None:
                out.append(Augmented(made[0], dict(example.labels), made[1], index))
    return out
