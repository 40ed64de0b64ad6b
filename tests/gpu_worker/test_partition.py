import itertools
import random

import pytest

from gpu_worker.partition import cheapest_cuts


def _cost(lengths, ranges, overhead):
    return sum(overhead + (end - start) * lengths[end - 1] for start, end in ranges)


def _valid(lengths, ranges, max_rows, max_tokens):
    covered = [i for start, end in ranges for i in range(start, end)]
    if covered != list(range(len(lengths))):
        return False
    for start, end in ranges:
        rows = end - start
        if rows > max_rows or (rows > 1 and rows * lengths[end - 1] > max_tokens):
            return False
    return True


def _brute_force(lengths, max_rows, max_tokens, overhead):
    best = None
    for mask in itertools.product([False, True], repeat=len(lengths) - 1):
        cuts = [0] + [i + 1 for i, cut in enumerate(mask) if cut] + [len(lengths)]
        ranges = list(itertools.pairwise(cuts))
        if _valid(lengths, ranges, max_rows, max_tokens):
            cost = _cost(lengths, ranges, overhead)
            best = cost if best is None else min(best, cost)
    return best


@pytest.mark.parametrize("seed", range(30))
def test_cuts_are_valid_and_as_cheap_as_brute_force(seed):
    rng = random.Random(seed)
    lengths = sorted(rng.randint(3, 256) for _ in range(rng.randint(1, 11)))
    max_rows, max_tokens = rng.randint(1, 6), rng.choice([64, 300, 1000, 4096])
    overhead = rng.choice([0, 16, 500, 4096])
    ranges = cheapest_cuts(
        lengths, max_rows=max_rows, max_tokens=max_tokens, overhead_tokens=overhead
    )
    assert _valid(lengths, ranges, max_rows, max_tokens)
    assert _cost(lengths, ranges, overhead) == _brute_force(lengths, max_rows, max_tokens, overhead)


def test_cpu_overhead_splits_a_long_text_from_short_ones():
    lengths = [10] * 8 + [250]
    assert cheapest_cuts(lengths, max_rows=32, max_tokens=4096, overhead_tokens=16) == [
        (0, 8),
        (8, 9),
    ]


def test_gpu_overhead_keeps_one_big_batch():
    lengths = [10] * 8 + [250]
    assert cheapest_cuts(lengths, max_rows=32, max_tokens=4096, overhead_tokens=4096) == [(0, 9)]


def test_a_row_longer_than_the_budget_runs_alone():
    assert cheapest_cuts([5, 500], max_rows=8, max_tokens=100, overhead_tokens=0) == [
        (0, 1),
        (1, 2),
    ]
