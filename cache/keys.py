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
