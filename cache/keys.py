"""Cache keys: the same normalized content under the same model and policy → the same key."""

from __future__ import annotations

import hashlib
import unicodedata


def normalize_content(text: str) -> str:
    """NFC and collapsed whitespace; this normalized text is also what the model scores."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def content_sha256(normalized: str) -> str:
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()


def cache_key(
    prefix: str, sha256_hex: str, model_name: str, model_version: str, policy_version: str
) -> str:
    """Model and policy versions are part of the key: promoting either never serves stale."""
    return f"{prefix}{model_name}:{model_version}:{policy_version}:{sha256_hex}"


def original_span(text: str, span: tuple[int, int]) -> tuple[int, int]:
    """``span`` [start, end) in ``normalize_content(text)`` as offsets into ``text`` itself (into
    its NFC form where NFC changes it: a text not in NFC is rare in practice)."""
    nfc = unicodedata.normalize("NFC", text)
    kept = [i for i, ch in enumerate(nfc) if not ch.isspace()]  # str.split's white space
    if not kept:
        return 0, 0
    normalized_to_nfc: list[int] = []
    words = nfc.split()
    at = 0
    for n, word in enumerate(words):
        if n:
            normalized_to_nfc.append(kept[at - 1] + 1)  # the space between two words
        normalized_to_nfc.extend(kept[at : at + len(word)])
        at += len(word)
    start, end = span
    if start >= end or start >= len(normalized_to_nfc):
        return 0, 0
    return normalized_to_nfc[start], normalized_to_nfc[min(end, len(normalized_to_nfc)) - 1] + 1
