"""Micro-batching: many callers' texts → few model calls.

Contract (checked eagerly, kept always):
- a batch holds at most ``max_batch_size`` rows and ``max_batch_tokens`` padded tokens
  (rows x longest row) — one text longer than the budget still runs, alone;
- the oldest (or an urgent) text waits at most ``max_wait_ms`` for company; an urgent text
  flushes a batch at once; while a batch runs, urgent texts do not wait for it: they run beside
  it on an urgent lane of their own (``urgent_lane``, on by default on CPU); up to
  ``model_lanes`` batches run at once (2 on CPU by default, 1 on GPU);
- rows in a batch are chosen from a window of pending texts sorted by length and cut at the
  least padded cost (``gpu_worker.partition``); identical token sequences in a batch run once;
- every caller gets exactly its rows back, in its order; if a batch fails, every caller with a
  row in it gets the exception;
- a model call that has not returned after ``call_timeout_s`` is **hung**: a watchdog fails
  every caller of its batch with ``ModelHung`` (a ``ModelUnavailable``: the job is retried),
  reports the batch as failed and hung, and gives its lane to a fresh thread (the stuck one
  exits, its late answer dropped, if the call ever returns);
- after each model call (and before any caller is answered) ``after_batch`` receives a
  ``BatchReport``: the hook through which tasks/ feeds Prometheus; a failing hook is logged and
  never fails a batch.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gpu_worker.backend import Backend, TokenIds
from gpu_worker.partition import cheapest_cuts
from gpu_worker.watchdog import RunningCall, Watchdog
from gpu_worker.windows import TextScores, aggregate, window_texts
from modq.errors import ModelHung

log = logging.getLogger(__name__)

WINDOW_BATCHES = 4  # pending texts considered for one batch: this many batches' worth
# Per-call cost of a model run in token-equivalents, by device: small on a CPU (padding
# dominates, so mixed lengths are split), large on a GPU (a bigger batch is nearly free).
DEFAULT_OVERHEAD_TOKENS = {"cpu": 16, "cuda": 4096}
# Batches run at once, by device: on a 2-core CPU two 1-thread lanes beat one (bench/batching.py,
# the bench's modq rows); a GPU runs one batch at a time.
DEFAULT_MODEL_LANES = {"cpu": 2, "cuda": 1}


class BatcherClosed(RuntimeError):
    """``submit`` after ``close``: the model is being swapped or the process stops."""


@dataclass(slots=True)
class _Request:
    future: Future[Any]
    scores: np.ndarray  # one row per window
    remaining: int
    finish: Callable[[np.ndarray], Any]  # window scores → what the future gives


@dataclass(order=True, slots=True)
class _Item:
    sort_key: tuple[int, int]  # (0 if urgent else 1, arrival sequence)
    arrived_s: float = field(compare=False)
    token_ids: TokenIds = field(compare=False)
    request: _Request = field(compare=False)
    row: int = field(compare=False)


@dataclass(frozen=True, slots=True)
class BatchReport:
    """One model call, as ``after_batch`` hooks see it."""

    texts: int  # texts the batch answered (before de-duplication)
    rows: int  # rows sent to the model (after de-duplication)
    padded_tokens: int  # rows x longest row: what the model computed
    real_tokens: int
    model_s: float  # wall time of the backend call
    urgent_lane: bool  # run on the urgent lane beside a running batch
    failed: bool  # the backend raised (or hung); every caller of the batch got the error
    error: str | None = None  # the backend's error, as one line (type: message), if failed
    hung: bool = False  # no answer within call_timeout_s: the watchdog failed its callers


BatchHook = Callable[[BatchReport], None]


@dataclass(slots=True)
class BatcherStats:
    batches: int = 0
    urgent_lane_batches: int = 0  # of those, run on the urgent lane beside a running batch
    rows: int = 0  # rows sent to the model after de-duplication
    rows_deduplicated: int = 0
    padded_tokens: int = 0
    real_tokens: int = 0
    hung_calls: int = 0  # model calls the watchdog gave up on


class MicroBatcher:
    """Collects texts from many threads and runs them through one backend in batches."""

    def __init__(
        self,
        backend: Backend,
        *,
        max_batch_size: int,
        max_batch_tokens: int,
        max_wait_ms: float,
        batch_overhead_tokens: int | None = None,
        urgent_lane: bool | None = None,
        model_lanes: int | None = None,
        after_batch: BatchHook | None = None,
        call_timeout_s: float | None = None,
    ) -> None:
        """``urgent_lane``: run urgent texts beside running batches (one more thread calling
        the backend); default on for CPU backends, off elsewhere. ``model_lanes``: batches run
        at once (threads calling the backend concurrently: on CPU like processes x 1 ORT
        thread, sharing one model); default by device, never more than the CPU cores.
        ``after_batch``: called in the lane's thread after each model call, before its callers
        are answered (keep it cheap). ``call_timeout_s``: a model call running longer is hung
        (the module doc); None = no watchdog."""
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        if max_batch_tokens < 1:
            raise ValueError(f"max_batch_tokens must be >= 1, got {max_batch_tokens}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}")
        if model_lanes is not None and model_lanes < 1:
            raise ValueError(f"model_lanes must be >= 1, got {model_lanes}")
        if batch_overhead_tokens is not None and batch_overhead_tokens < 0:
            raise ValueError(f"batch_overhead_tokens must be >= 0, got {batch_overhead_tokens}")
        if call_timeout_s is not None and call_timeout_s <= 0:
            raise ValueError(f"call_timeout_s must be > 0, got {call_timeout_s}")
        self.backend = backend
        self.max_batch_size = max_batch_size
        self.max_batch_tokens = max_batch_tokens
        self.max_wait_s = max_wait_ms / 1000.0
        self.batch_overhead_tokens = (
            DEFAULT_OVERHEAD_TOKENS.get(backend.device, DEFAULT_OVERHEAD_TOKENS["cpu"])
            if batch_overhead_tokens is None
            else batch_overhead_tokens
        )
        self.urgent_lane = backend.device == "cpu" if urgent_lane is None else urgent_lane
        self.after_batch = after_batch
        self.stats = BatcherStats()
        self._stats_lock = threading.Lock()
        self._pending: list[_Item] = []
        self._sequence = itertools.count()
        self._wakeup = threading.Condition()
        self._closed = False
        self.model_lanes = (
            min(DEFAULT_MODEL_LANES.get(backend.device, 1), os.cpu_count() or 1)
            if model_lanes is None
            else model_lanes
        )
        self._running = 0  # model lanes running a batch now
        self.call_timeout_s = call_timeout_s
        self._watchdog = None if call_timeout_s is None else Watchdog(call_timeout_s, self._give_up)
        self._threads = [
            self._lane(self._loop, f"modq-batcher-{lane}") for lane in range(self.model_lanes)
        ]
        if self.urgent_lane:
            self._threads.append(self._lane(self._urgent_loop, "modq-batcher-urgent"))

    def _lane(self, target: Callable[[], None], name: str) -> threading.Thread:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        return thread

    # --- callers ------------------------------------------------------------------------
    def submit(self, texts: Sequence[str], *, urgent: bool = False) -> Future[np.ndarray]:
        """Queue texts; the future gives their scores (len(texts), categories) in order: per
        category the maximum over each text's windows (``gpu_worker.windows``)."""
        return self._submit(texts, urgent, lambda matrix, plans: aggregate(matrix, plans).scores)

    def submit_scored(self, texts: Sequence[str], *, urgent: bool = False) -> Future[TextScores]:
        """Like ``submit``; the future gives ``TextScores``: the scores, and per category the
        span (character offsets) of the window that gave its score."""
        return self._submit(texts, urgent, aggregate)

    def _submit(
        self, texts: Sequence[str], urgent: bool, finish: Callable[[np.ndarray, Any], Any]
    ) -> Future[Any]:
        future: Future[Any] = Future()
        if not texts:
            future.set_result(finish(np.zeros((0, len(self.backend.categories)), np.float32), []))
            return future
        # in the caller's thread, overlapping the model: every window is one row of a batch,
        # so the token budget counts windows
        plans = self.backend.windows(texts)
        token_ids = self.backend.tokenize(window_texts(texts, plans))
        request = _Request(
            future,
            np.zeros((len(token_ids), len(self.backend.categories)), np.float32),
            len(token_ids),
            lambda matrix: finish(matrix, plans),
        )
        now = time.monotonic()
        with self._wakeup:
            if self._closed:
                raise BatcherClosed("batcher is closed")
            for row, ids in enumerate(token_ids):
                key = (0 if urgent else 1, next(self._sequence))
                self._pending.append(_Item(key, now, ids, request, row))
            self._wakeup.notify_all()
        return future

    def close(self, timeout_s: float = 30.0) -> None:
        """Refuse new texts, run those already pending (without waiting for company), stop.

        Texts still pending after ``timeout_s`` (a model that hangs) fail with RuntimeError.
        """
        with self._wakeup:
            self._closed = True
            self._wakeup.notify_all()
        if self._watchdog is not None:
            self._watchdog.close()  # it stops once no call is left in flight
        deadline_s = time.monotonic() + timeout_s
        for thread in list(self._threads):  # a hung lane's thread was swapped out already
            thread.join(max(0.0, deadline_s - time.monotonic()))
        with self._wakeup:
            leftovers, self._pending = self._pending, []
        self._fail(leftovers, RuntimeError("batcher closed before these texts ran"))

    # --- the loop -----------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._wakeup:
                batch = self._next_batch()
                if batch is None:
                    break
                self._running += 1
            abandoned = False
            try:
                abandoned = self._run(batch)
            finally:
                if not abandoned:  # a hung lane's count was given back by the watchdog
                    with self._wakeup:
                        self._running -= 1
            if abandoned:
                return  # the watchdog gave this lane to a fresh thread

    def _urgent_loop(self) -> None:
        """The urgent lane: while every model lane runs a batch, urgent texts run here at once."""
        while True:
            with self._wakeup:
                while not self._closed and not (
                    self._running >= self.model_lanes and self._has_urgent()
                ):
                    self._wakeup.wait()
                if self._closed:
                    return  # the main lane drains what is left
                batch = self._take_batch(urgent_only=True)
            if self._run(batch, urgent_lane=True):
                return  # hung: the watchdog gave the urgent lane to a fresh thread

    def _has_urgent(self) -> bool:
        return any(item.sort_key[0] == 0 for item in self._pending)

    def _next_batch(self) -> list[_Item] | None:
        """Wait (holding the condition) until a batch is due; take it out of pending."""
        while True:
            if self._closed:
                return self._take_batch() if self._pending else None  # drain, then stop
            if self._pending:
                first = min(self._pending)
                due_s = first.arrived_s + (0.0 if first.sort_key[0] == 0 else self.max_wait_s)
                wait_s = due_s - time.monotonic()
                if wait_s <= 0 or self._enough_pending():
                    return self._take_batch()
                self._wakeup.wait(wait_s)
            else:
                self._wakeup.wait()

    def _enough_pending(self) -> bool:
        if len(self._pending) >= self.max_batch_size:
            return True
        tokens = sum(len(item.token_ids) for item in self._pending)
        return tokens >= self.max_batch_tokens

    def _take_batch(self, *, urgent_only: bool = False) -> list[_Item]:
        self._pending.sort()
        candidates = (
            [i for i in self._pending if i.sort_key[0] == 0] if urgent_only else self._pending
        )
        window = candidates[: self.max_batch_size * WINDOW_BATCHES]
        anchor = window[0]
        by_length = sorted(window, key=lambda item: len(item.token_ids))
        for chunk in self._chunks(by_length):
            if any(item is anchor for item in chunk):
                chosen = {id(item) for item in chunk}
                self._pending = [i for i in self._pending if id(i) not in chosen]
                return chunk
        raise AssertionError("anchor item not in any chunk")  # pragma: no cover

    def _chunks(self, by_length: list[_Item]) -> list[list[_Item]]:
        ranges = cheapest_cuts(
            [len(item.token_ids) for item in by_length],
            max_rows=self.max_batch_size,
            max_tokens=self.max_batch_tokens,
            overhead_tokens=self.batch_overhead_tokens,
        )
        return [by_length[start:end] for start, end in ranges]

    def _run(self, batch: list[_Item], *, urgent_lane: bool = False) -> bool:
        """Run one batch and answer its callers; True if the watchdog gave up on it meanwhile
        (hung: its callers were failed, the lane handed to a fresh thread)."""
        unique: dict[tuple[int, ...], int] = {}
        rows: list[TokenIds] = []
        slots: list[int] = []
        for item in batch:
            key = tuple(item.token_ids)
            if key not in unique:
                unique[key] = len(rows)
                rows.append(item.token_ids)
            slots.append(unique[key])
        padded_tokens = len(rows) * max(len(r) for r in rows)
        real_tokens = sum(len(r) for r in rows)
        started_s = time.perf_counter()
        call = self._call_started(batch, urgent_lane)
        failure: BaseException | None = None
        try:
            scores = self.backend.run(rows)
        except BaseException as exc:  # every waiter of the batch learns of the failure
            failure = exc
        if self._call_ended(call):
            log.warning(
                "modq: a hung model call returned after %.1f s; its answer is dropped",
                time.perf_counter() - started_s,
            )
            return True
        hook = self.after_batch
        if hook is not None:
            _notify(
                hook,
                BatchReport(
                    texts=len(batch),
                    rows=len(rows),
                    padded_tokens=padded_tokens,
                    real_tokens=real_tokens,
                    model_s=time.perf_counter() - started_s,
                    urgent_lane=urgent_lane,
                    failed=failure is not None,
                    error=None if failure is None else describe_error(failure),
                ),
            )
        if failure is not None:
            self._fail(batch, failure)
            return False
        with self._stats_lock:
            self.stats.batches += 1
            self.stats.urgent_lane_batches += urgent_lane
            self.stats.rows += len(rows)
            self.stats.rows_deduplicated += len(batch) - len(rows)
            self.stats.padded_tokens += padded_tokens
            self.stats.real_tokens += real_tokens
        for item, slot in zip(batch, slots, strict=True):
            request = item.request
            request.scores[item.row] = scores[slot]
            request.remaining -= 1
            if request.remaining == 0 and not request.future.done():
                _answer(request)
        return False

    # --- the watchdog (gpu_worker/watchdog.py) ------------------------------------------
    def _call_started(self, batch: list[_Item], urgent_lane: bool) -> RunningCall | None:
        return None if self._watchdog is None else self._watchdog.started(batch, urgent_lane)

    def _call_ended(self, call: RunningCall | None) -> bool:
        """The call returned: True if the watchdog had given up on it."""
        return call is not None and self._watchdog is not None and self._watchdog.ended(call)

    def hung_now(self) -> list[float]:
        """How long (s) each model call that hung and has not returned yet has been running."""
        return [] if self._watchdog is None else self._watchdog.hung_now()

    def _give_up(self, call: RunningCall, timeout_s: float) -> None:
        """A hung call: report it, fail its callers, give its lane to a fresh thread."""
        with self._stats_lock:
            self.stats.hung_calls += 1
        error = ModelHung(
            f"the model did not answer within {timeout_s:g} s (a hung model call); "
            "the job is retried",
            timeout_s=timeout_s,
        )
        log.error(
            "modq: model call hung: no answer within %g s (%d texts); its jobs are retried",
            timeout_s,
            len(call.batch),
        )
        hook = self.after_batch
        if hook is not None:
            rows = {tuple(item.token_ids) for item in call.batch}
            longest = max(len(item.token_ids) for item in call.batch)
            _notify(
                hook,
                BatchReport(
                    texts=len(call.batch),
                    rows=len(rows),
                    padded_tokens=len(rows) * longest,
                    real_tokens=sum(len(r) for r in rows),
                    model_s=time.monotonic() - call.started_s,
                    urgent_lane=call.urgent_lane,
                    failed=True,
                    error=describe_error(error),
                    hung=True,
                ),
            )
        self._fail(call.batch, error)
        with self._wakeup:
            if call.thread in self._threads:
                self._threads.remove(call.thread)
            if not call.urgent_lane:
                self._running -= 1  # the stuck thread no longer counts as a running lane
            if call.urgent_lane:
                self._threads.append(self._lane(self._urgent_loop, "modq-batcher-urgent"))
            else:
                self._threads.append(self._lane(self._loop, call.thread.name))
            self._wakeup.notify_all()

    @staticmethod
    def _fail(items: list[_Item], exc: BaseException) -> None:
        for item in items:
            if not item.request.future.done():
                item.request.future.set_exception(exc)


def _answer(request: _Request) -> None:
    try:
        result = request.finish(request.scores)
    except Exception as exc:  # an aggregation bug fails its caller, never the lane
        request.future.set_exception(exc)
        return
    request.future.set_result(result)


def _notify(hook: BatchHook, report: BatchReport) -> None:
    try:
        hook(report)
    except Exception:  # an observer never fails a batch
        log.exception("modq: after_batch hook failed")


def describe_error(exc: BaseException) -> str:
    """An error as one short line (type: first line of its message), for logs and reports."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300] if text else ''}"
