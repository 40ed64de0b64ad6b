"""E-mail and chat: hand-written legitimate messages (chat, work and personal e-mail,
newsletters, receipts) and spam. Target: legitimate messages removed at most 0.2% (the upper
Wilson bound is the interval's); spam recall is reported beside it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from training.datasets import Example
from training.probes.base import Lookup, ProbeSet, rate, read_lines, target

NAME = "email"
MAX_HAM_REMOVED = 0.002


def ham() -> list[tuple[str, str]]:
    """(kind, text) of every legitimate message in ``email_ham.txt``."""
    out = []
    for line in read_lines("email_ham.txt"):
        kind, text = line.split("\t", 1)
        out.append((kind, text))
    return out


def spam() -> list[str]:
    """The hand-written spam and phishing e-mails."""
    return read_lines("email_spam.txt")


def build(rows: Sequence[Example], seed: int = 0) -> ProbeSet:
    """The e-mail set (hand-written only: ``rows`` and ``seed`` are unused)."""
    legit, junk = ham(), spam()
    texts = tuple(dict.fromkeys([t for _, t in legit] + junk))

    def report(lookup: Lookup) -> dict[str, Any]:
        removed = [t for _, t in legit if lookup[t].action == "remove"]
        per_kind: dict[str, Any] = {}
        for kind in sorted({k for k, _ in legit}):
            mine = [t for k, t in legit if k == kind]
            entry = rate(sum(lookup[t].action == "remove" for t in mine), len(mine))
            entry["actioned"] = rate(sum(lookup[t].actioned for t in mine), len(mine))
            per_kind[kind] = entry
        overall = rate(len(removed), len(legit))
        details = {
            "kinds": per_kind,
            "ham_actioned": rate(sum(lookup[t].actioned for _, t in legit), len(legit)),
            "removed_examples": removed[:5],
            "spam_actioned": rate(sum(lookup[t].actioned for t in junk), len(junk)),
            "spam_removed": rate(sum(lookup[t].action == "remove" for t in junk), len(junk)),
        }
        return target(
            overall["value"],
            overall["ci95"],
            len(legit),
            f"legitimate e-mail and chat removed <= {MAX_HAM_REMOVED}",
            overall["value"] <= MAX_HAM_REMOVED,
            details,
        )

    return ProbeSet(NAME, texts, report)
