"""The ceiling: the served model called in-process, no queue, at its best configuration.

Tries processes x ONNX Runtime threads x batch policies. Each process (spawned, so nothing is
inherited) loads its own ``OnnxBackend`` and scores its share of the texts; a cell's figure is
all texts over the wall time from "go" to the last process done. Tokenization is part of the
cost in every policy.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

POLICIES = {
    "one": "one text at a time",
    "fixed32": "fixed batches of 32, padded to the longest",
    "batcher": "token-budget batches (MicroBatcher, 1 model lane)",
    "sorted": "whole share length-sorted, cut at least padded cost",
    "lanes": "token-budget batches (MicroBatcher, 2 model lanes)",
}


def policy_applies(policy: str, layout_index: int, processes: int, threads: int) -> bool:
    """fixed32 loses by far (padding): first layout only, to keep the run short; 2 model
    lanes are a one-process layout of their own (2 lanes x 1 thread ~ 2 processes x 1)."""
    if policy == "fixed32":
        return layout_index == 0
    if policy == "lanes":
        return processes == 1 and threads == 1
    return True


FIXED_BATCH = 32
MAX_BATCH_TOKENS = 4096
SUBMIT_ROWS = 32  # texts per MicroBatcher.submit: a message's worth


def run_policy(backend: Any, policy: str, texts: Sequence[str]) -> None:
    """Score ``texts`` with one batch policy (results are discarded)."""
    if policy == "one":
        for text in texts:
            backend.run(backend.tokenize([text]))
    elif policy == "fixed32":
        for start in range(0, len(texts), FIXED_BATCH):
            backend.run(backend.tokenize(texts[start : start + FIXED_BATCH]))
    elif policy in ("batcher", "lanes"):
        from gpu_worker.batcher import MicroBatcher

        batcher = MicroBatcher(
            backend,
            max_batch_size=FIXED_BATCH,
            max_batch_tokens=MAX_BATCH_TOKENS,
            max_wait_ms=5,
            model_lanes=2 if policy == "lanes" else 1,
        )
        try:
            futures = [
                batcher.submit(texts[start : start + SUBMIT_ROWS])
                for start in range(0, len(texts), SUBMIT_ROWS)
            ]
            for future in futures:
                future.result(timeout=600)
        finally:
            batcher.close()
    elif policy == "sorted":
        from gpu_worker.partition import cheapest_cuts

        ids = sorted(backend.tokenize(texts), key=len)
        for start, end in cheapest_cuts(
            [len(row) for row in ids],
            max_rows=FIXED_BATCH,
            max_tokens=MAX_BATCH_TOKENS,
            overhead_tokens=16,
        ):
            backend.run(ids[start:end])
    else:
        raise ValueError(f"unknown policy {policy!r}")


def _serve(connection: Connection, model_dir: str, threads: int, texts: list[str]) -> None:
    """Child process: load the model, then run each policy it is sent on its share."""
    from gpu_worker.backends.onnx import OnnxBackend

    backend = OnnxBackend(Path(model_dir), device="cpu", intra_op_threads=threads)
    backend.score(texts[:16])  # warm-up: first runs allocate
    connection.send("ready")
    while True:
        policy = connection.recv()
        if policy is None:
            return
        run_policy(backend, policy, texts)
        connection.send("done")


class ProcessGroup:
    """``processes`` children, each with its own backend and its share of the texts."""

    def __init__(self, model_dir: Path, processes: int, threads: int, texts: list[str]) -> None:
        context = multiprocessing.get_context("spawn")
        self.count = len(texts)
        self._links: list[Connection] = []
        self._children = []
        for index in range(processes):
            parent, child = context.Pipe()
            share = texts[index::processes]
            process = context.Process(
                target=_serve, args=(child, str(model_dir), threads, share), daemon=True
            )
            process.start()
            self._links.append(parent)
            self._children.append(process)
        for link in self._links:
            if link.recv() != "ready":
                raise RuntimeError("ceiling process failed to start")

    def texts_per_s(self, policy: str) -> float:
        started = time.perf_counter()
        for link in self._links:
            link.send(policy)
        for link in self._links:
            link.recv()
        return self.count / (time.perf_counter() - started)

    def close(self) -> None:
        """Stop the children (idempotent)."""
        links, self._links = self._links, []
        for link in links:
            link.send(None)
        for process in self._children:
            process.join(30)
            if process.is_alive():
                process.kill()
