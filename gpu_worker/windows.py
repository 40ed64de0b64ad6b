"""Text windows: a long text scored whole, a short span never diluted.

A mean-pooled embedding of a 2,000-word post barely moves for one threat inside it, and the
served length (256 tokens) cut the rest off without a sign. So a text is scored as several
windows, each a substring of the original text, tokenised as if it had been sent alone:

- **context windows**: the text in consecutive chunks of at most ``max_tokens`` tokens (a text
  that fits is one chunk: exactly what was scored before windows existed);
- **sentence windows** (only for a text of more than one sentence, or longer than
  ``sentence_tokens``): each sentence alone, a long sentence cut into consecutive pieces of
  ``sentence_tokens``, so a short abusive span sits with little context.

Scores are aggregated per category by the maximum over a text's windows; the window that gave
the maximum is the category's **span** (character offsets into the original text), kept as
evidence in the result. A short, single-sentence text is one window: its scores are the same
as before.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# sentence windows hold at most this many word pieces, cut end to end (no overlap). On 50
# evaluation offensive texts hidden in ~2,000-word posts (caught alone), against tokens scored
# on the real mix: 16 end to end 0.94 at x2.5 tokens; 16 every 8: 0.96 at x3.2; 24 every 12:
# 0.90 at x2.9; 48 every 24: 0.82 (docs/batching.md, bench.windowing)
SENTENCE_TOKENS = 16
MIN_SENTENCE_CHARS = 12  # a shorter sentence ("Hi.", "lol") is scored with the next one
MAX_WINDOWS = 1024  # per text; beyond this (never at the default content limit) the rest is cut
# a sentence ends at . ! ? … (and closing quotes or brackets) followed by white space, or at a
# line break; not after a lone letter ("p.m.", "e.g.", "U.S.")
_SENTENCE_END = re.compile(r"(?<!\b\w)[.!?\u2026]+[\"'\u201d\u2019)\]]*\s+|\n\s*")


@dataclass(frozen=True, slots=True)
class Window:
    """One scored substring: ``text[start:end]`` of the original text."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class TextWindows:
    """A text's windows and whether the window cap cut the text short."""

    windows: tuple[Window, ...]
    truncated: bool = False

    @classmethod
    def whole(cls, text: str) -> TextWindows:
        """The text as one window."""
        return cls((Window(0, len(text)),))


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence, white space trimmed; short ones merged into the next."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((start, match.start() + len(match.group().rstrip())))
        start = match.end()
    if start < len(text):
        spans.append((start, len(text)))
    merged: list[tuple[int, int]] = []
    carry: int | None = None
    for begin, end in spans:
        begin = begin if carry is None else carry
        if len(text[begin:end].strip()) < MIN_SENTENCE_CHARS:
            carry = begin
            continue
        merged.append((begin, end))
        carry = None
    if carry is not None:
        if merged:
            merged[-1] = (merged[-1][0], len(text))
        else:
            merged.append((carry, len(text)))
    return [s for s in merged if text[s[0] : s[1]].strip()]


def _pieces(offsets: Sequence[tuple[int, int]], start: int, end: int) -> list[tuple[int, int]]:
    return [o for o in offsets if o[0] >= start and o[1] <= end and o[1] > o[0]]


def _chunks(pieces: Sequence[tuple[int, int]], size: int, stride: int) -> list[tuple[int, int]]:
    """Character spans of consecutive runs of ``size`` pieces, every ``stride`` pieces."""
    if len(pieces) <= size:
        return [(pieces[0][0], pieces[-1][1])] if pieces else []
    spans = []
    for first in range(0, len(pieces), stride):
        run = pieces[first : first + size]
        spans.append((run[0][0], run[-1][1]))
        if first + size >= len(pieces):
            break
    return spans


def plan_windows(
    text: str,
    offsets: Sequence[tuple[int, int]] | None,
    *,
    max_tokens: int,
    sentence_tokens: int = SENTENCE_TOKENS,
) -> TextWindows:
    """The windows of ``text``. ``offsets``: its word pieces' (start, end) in the text, not
    truncated, special tokens left out; None when the text is known to be short (one window)."""
    whole = TextWindows.whole(text)
    if offsets is None or not offsets:
        return whole
    sentences = sentence_spans(text)
    body = max_tokens - 2  # room for the special tokens the tokenizer adds
    if len(offsets) <= min(body, sentence_tokens) and len(sentences) <= 1:
        return whole
    spans: list[tuple[int, int]] = []
    if len(offsets) <= body:
        spans.append((0, len(text)))
    else:
        spans += _chunks(list(offsets), body, body)
    if len(sentences) > 1 or len(offsets) > sentence_tokens:
        for begin, end in sentences or [(0, len(text))]:
            pieces = _pieces(offsets, begin, end)
            spans += _chunks(pieces, sentence_tokens, sentence_tokens)
    unique = list(dict.fromkeys(s for s in spans if s[1] > s[0]))
    truncated = len(unique) > MAX_WINDOWS
    return TextWindows(tuple(Window(s, e) for s, e in unique[:MAX_WINDOWS]), truncated)


class WindowPlanner:
    """Plans windows with an untruncated copy of a backend's tokenizer (for the offsets)."""

    def __init__(self, tokenizer: Any, max_tokens: int, sentence_tokens: int = SENTENCE_TOKENS):
        from tokenizers import Tokenizer

        self._full = Tokenizer.from_str(tokenizer.to_str())
        self._full.no_truncation()
        self._full.no_padding()
        self.max_tokens = max_tokens
        self.sentence_tokens = sentence_tokens

    def plan(self, texts: Sequence[str]) -> list[TextWindows]:
        """Every text's windows; short single-sentence texts need no tokenizer pass here."""
        plans: list[TextWindows | None] = [None] * len(texts)
        long_rows: list[int] = []
        for i, text in enumerate(texts):
            # a word piece covers at least one character, so a text of few characters has few
            # pieces; one sentence of them is one window
            if len(text) <= self.sentence_tokens and len(sentence_spans(text)) <= 1:
                plans[i] = plan_windows(text, None, max_tokens=self.max_tokens)
            else:
                long_rows.append(i)
        if long_rows:
            encodings = self._full.encode_batch(
                [texts[i] for i in long_rows], add_special_tokens=False
            )
            for i, encoding in zip(long_rows, encodings, strict=True):
                plans[i] = plan_windows(
                    texts[i],
                    encoding.offsets,
                    max_tokens=self.max_tokens,
                    sentence_tokens=self.sentence_tokens,
                )
        return [p for p in plans if p is not None]


@dataclass(frozen=True, slots=True)
class TextScores:
    """Per text: scores (texts x categories), the maximum over its windows; ``spans`` (texts x
    categories x 2), the character offsets of the window that gave each maximum; ``windows``
    scored per text; ``truncated``: texts whose windows were capped."""

    scores: np.ndarray
    spans: np.ndarray
    windows: list[int]
    truncated: list[bool]


def aggregate(window_scores: np.ndarray, plans: Sequence[TextWindows]) -> TextScores:
    """Max per category over each text's windows (rows of ``window_scores`` in plan order)."""
    categories = window_scores.shape[1]
    scores = np.zeros((len(plans), categories), np.float32)
    spans = np.zeros((len(plans), categories, 2), np.int64)
    row = 0
    for i, plan in enumerate(plans):
        count = len(plan.windows)
        block = window_scores[row : row + count]
        best = block.argmax(axis=0)
        scores[i] = block[best, np.arange(categories)]
        starts = np.array([w.start for w in plan.windows])
        ends = np.array([w.end for w in plan.windows])
        spans[i, :, 0] = starts[best]
        spans[i, :, 1] = ends[best]
        row += count
    return TextScores(scores, spans, [len(p.windows) for p in plans], [p.truncated for p in plans])


def window_texts(texts: Sequence[str], plans: Sequence[TextWindows]) -> list[str]:
    """The substrings to score, in plan order."""
    return [texts[i][w.start : w.end] for i, plan in enumerate(plans) for w in plan.windows]
