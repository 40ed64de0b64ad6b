"""What scoring long texts in windows costs, on the real length mix.

`python -m bench.windowing [--texts 2000] [--repeats 3] [--model DIR]` takes a seeded sample
of every held-out row of every source (Wikipedia comments, tweets, insults, SMS, ...: the
lengths as they come, nothing filtered), and runs it through the worker's micro-batcher (its
default size, token budget and lanes) twice per repeat, alternating:

- **windows** (the worker's path): every text as its windows (``gpu_worker.windows``);
- **baseline** (before windows): every text as one input, cut at the model's 256 tokens.

It prints the length mix, windows and tokens per text, texts/s of each path (median and
spread over the repeats) and the ratio windows / baseline, overall and for the texts that are
split into more than one window.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gpu_worker.backends.onnx import OnnxBackend
from gpu_worker.batcher import MicroBatcher
from modq.settings import get_settings

SEED = 0


class WholeTextBackend(OnnxBackend):
    """The ONNX backend as it scored before windows: one input per text, truncated."""

    def text_tokenizer(self) -> None:  # type: ignore[override]
        return None


def real_mix(count: int) -> list[str]:
    """A seeded sample of the held-out rows of every source, de-duplicated."""
    from training.evaluate import held_out_examples

    texts = list(dict.fromkeys(e.text for e in held_out_examples()))
    return random.Random(SEED).sample(texts, min(count, len(texts)))


def run_through_batcher(backend: OnnxBackend, texts: Sequence[str]) -> float:
    """Seconds to score ``texts`` submitted one job each, as the worker's threads do."""
    settings = get_settings()
    batcher = MicroBatcher(
        backend,
        max_batch_size=settings.max_batch_size,
        max_batch_tokens=settings.max_batch_tokens,
        max_wait_ms=settings.max_wait_ms,
    )
    try:
        started = time.perf_counter()
        futures = [batcher.submit([t]) for t in texts]
        for future in futures:
            future.result(timeout=600)
        return time.perf_counter() - started
    finally:
        batcher.close()


def _percentiles(values: Sequence[int]) -> str:
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return f"p50 {p50:.0f}, p90 {p90:.0f}, p99 {p99:.0f}, max {max(values)}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args(argv)
    folder = args.model or get_settings().model_dir
    texts = real_mix(args.texts)
    windowed, whole = OnnxBackend(folder), WholeTextBackend(folder)
    plans = windowed.windows(texts)
    windows = [len(p.windows) for p in plans]
    full = windowed.text_tokenizer()
    lengths = [len(e.ids) for e in full.encode_batch(texts)]  # truncated at 256, as served
    pieces = [len(ids) for ids in windowed.tokenize([t for t in texts])]
    window_tokens = [
        sum(len(ids) for ids in windowed.tokenize([t[w.start : w.end] for w in p.windows]))
        for t, p in zip(texts, plans, strict=True)
    ]
    split = [i for i, n in enumerate(windows) if n > 1]
    print(f"{len(texts)} held-out texts of every source (seed {SEED}), {folder}")
    print(f"  characters per text: {_percentiles([len(t) for t in texts])}")
    print(f"  tokens per text (cut at 256): {_percentiles(lengths)}")
    print(f"  windows per text: {_percentiles(windows)}; {len(split)} texts in >1 window")
    print(
        f"  tokens scored: baseline {sum(pieces)}, windows {sum(window_tokens)} "
        f"(x{sum(window_tokens) / sum(pieces):.2f})"
    )
    subsets = {"all texts": list(texts), "texts in >1 window": [texts[i] for i in split]}
    for name, subset in subsets.items():
        if not subset:
            continue
        timings: dict[str, list[float]] = {"baseline": [], "windows": []}
        for repeat in range(args.repeats):
            for label, backend in (("baseline", whole), ("windows", windowed)):
                seconds = run_through_batcher(backend, subset)
                timings[label].append(len(subset) / seconds)
                print(
                    f"  [{name}] repeat {repeat + 1}/{args.repeats} {label}: "
                    f"{len(subset) / seconds:.0f} texts/s",
                    file=sys.stderr,
                    flush=True,
                )
        base, win = (statistics.median(timings[k]) for k in ("baseline", "windows"))
        print(
            f"{name} ({len(subset)}): baseline {base:.0f} texts/s "
            f"[{min(timings['baseline']):.0f}-{max(timings['baseline']):.0f}], windows "
            f"{win:.0f} texts/s [{min(timings['windows']):.0f}-{max(timings['windows']):.0f}]"
            f"; ratio windows/baseline {win / base:.2f}"
        )


if __name__ == "__main__":
    main()
