"""Cutting length-sorted texts into batches at the least padded cost.

Cost model: a batch costs ``overhead_tokens + rows x longest_row`` (its padded tokens plus a
fixed per-call cost in token-equivalents). On a CPU the per-call cost is a few tokens, so mixed
lengths are split; on a GPU it is thousands, so batches stay large. Dynamic programming over the
sorted lengths finds the cheapest cut that respects the row and token limits, in
O(n x max_rows).
"""

from __future__ import annotations

from collections.abc import Sequence


def cheapest_cuts(
    sorted_lengths: Sequence[int], *, max_rows: int, max_tokens: int, overhead_tokens: int
) -> list[tuple[int, int]]:
    """Half-open ``(start, end)`` ranges covering ``sorted_lengths`` (ascending) in order.

    A range holds at most ``max_rows`` rows and ``rows x longest <= max_tokens`` padded tokens;
    a single row longer than the budget still gets a range of its own.
    """
    count = len(sorted_lengths)
    best = [0.0] + [float("inf")] * count  # best[j]: cheapest cost of the first j rows
    cut_from = [0] * (count + 1)
    for end in range(1, count + 1):
        longest = sorted_lengths[end - 1]
        for start in range(end - 1, max(end - max_rows, 0) - 1, -1):
            rows = end - start
            if rows > 1 and rows * longest > max_tokens:
                break  # more rows only add tokens
            cost = best[start] + overhead_tokens + rows * longest
            if cost < best[end]:
                best[end], cut_from[end] = cost, start
    ranges: list[tuple[int, int]] = []
    end = count
    while end > 0:
        ranges.append((cut_from[end], end))
        end = cut_from[end]
    return ranges[::-1]
