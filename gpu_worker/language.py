"""Which language a text is in: py3langid's naive Bayes model (shipped in its wheel; ~50-500 µs
a text on one core, deterministic), loaded once per process on first use.

Short or ambiguous text (a few words, emoji, numbers, URLs) is never called foreign: with fewer
than ``MIN_LETTERS`` letters, or a best guess below ``RELIABLE_CONFIDENCE``, the guess is the
default language, unreliable. py3langid's Nigerian Pidgin label (``pcm``) is where much
non-standard English lands (AAVE tweets, Singapore SMS), so it counts as English.
"""

from __future__ import annotations

import threading
from typing import Any

from policy.language import DEFAULT_LANGUAGE, LanguageGuess

__all__ = ["LanguageGuess", "detect_language"]

MIN_LETTERS = 8  # fewer letters than this: too short to tell
RELIABLE_CONFIDENCE = 0.5  # a best guess below this probability is not reliable
MAX_CHARS = 2_000  # only the head of a long text is read (cost grows with length)
ENGLISH_LIKE = frozenset({DEFAULT_LANGUAGE, "pcm"})
NO_LANGUAGE = frozenset({"zxx", "und"})  # py3langid's "no linguistic content"

_lock = threading.Lock()
_identifier: Any = None


def _model() -> Any:
    """py3langid's identifier with probabilities, loaded once (thread-safe)."""
    global _identifier
    if _identifier is None:
        with _lock:
            if _identifier is None:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                _identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    return _identifier


def _has_letters(text: str, count: int) -> bool:
    for char in text:
        if char.isalpha():
            count -= 1
            if count <= 0:
                return True
    return False


def detect_language(text: str) -> LanguageGuess:
    """The language ``text`` is in: ``code`` ISO 639-1 (ISO 639-3 for a language without one),
    ``confidence`` the model's probability of it; short or ambiguous text is
    ``LanguageGuess("en", p, reliable=False)``, ``p`` the probability of English."""
    sample = text[:MAX_CHARS]
    if not _has_letters(sample, MIN_LETTERS):
        return LanguageGuess(DEFAULT_LANGUAGE, 0.0, False)
    ranked: list[tuple[str, float]] = _model().rank(sample)
    english = min(1.0, sum(p for code, p in ranked if code in ENGLISH_LIKE))
    code, confidence = ranked[0]
    if code in ENGLISH_LIKE or code in NO_LANGUAGE or confidence < RELIABLE_CONFIDENCE:
        return LanguageGuess(DEFAULT_LANGUAGE, round(english, 4), english >= RELIABLE_CONFIDENCE)
    return LanguageGuess(code, round(float(confidence), 4), True)
