"""The model's circuit breaker, its fallback engine and its half-open probe.

A model that starts failing (a corrupt file, a CUDA error) must not fail every job through
all its retries, nor be called by every retry. The primary engine of a process is guarded:

- **closed**: jobs go to the primary engine. Each of its model calls reports to the breaker
  (``modq.circuit``), and so does a failed load; ``failure_threshold`` consecutive failures
  within ``window_s`` open it. A **hung** call (no answer within the engine's
  ``call_timeout_s``: the batcher's watchdog gave up on it) opens it at once: a model that
  stops answering holds a lane per call, so waiting for more such failures would stall every
  job behind it for minutes.
- **open**: no job calls the primary model. Where a fallback exists, jobs are served by it:
  a CPU copy of the same model files (fallback ``auto``: when the primary ran on a GPU, or
  never loaded on a worker asked to run on ``cuda``; ``cpu``: whatever the primary's
  device), stamped with the same model name and version and marked as served by it. Else
  ``engine()`` raises ``ModelCircuitOpen`` (a ``ModelUnavailable``: the job is retried
  later) at once, without touching the model.
- **half-open**: every ``probe_interval_s`` while open, a prober thread takes the breaker's one
  trial and runs a tiny inference on the primary engine (loading it first if it never
  loaded). Success closes the breaker and frees the fallback; failure keeps it open. A probe
  that does not answer within ``call_timeout_s`` is a failure too (its thread is left to
  finish; no second probe runs while it has not).

This room knows no metrics: ``on_change`` hooks (``gpu_worker.runtime.add_hooks``) see every
change of state; tasks/ turns them into a gauge and readiness.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gpu_worker.batcher import describe_error
from modq.circuit import BreakerSnapshot, BreakerState, CircuitBreaker
from modq.errors import ModelCircuitOpen, ModelHung, ModelUnavailable

if TYPE_CHECKING:
    from gpu_worker.model_source import ResolvedModel
    from gpu_worker.runtime import Engine, EngineConfig

log = logging.getLogger(__name__)

PROBE_TEXTS = ("modq readiness probe",)  # one short text: the cheapest real inference
FALLBACK_MODES = ("auto", "cpu", "none")
PRIMARY, FALLBACK = "primary", "fallback"


@dataclass(frozen=True, slots=True)
class GuardConfig:
    """The breaker's knobs (``MODQ_MODEL_BREAKER_*`` and ``MODQ_MODEL_FALLBACK``)."""

    failure_threshold: int = 5  # consecutive failed model calls (or loads) that open it; 0 = off
    window_s: float = 30.0  # ... within this long
    probe_interval_s: float = 5.0  # while open, a tiny inference this often
    fallback: str = "auto"  # auto | cpu | none

    def __post_init__(self) -> None:
        if self.fallback not in FALLBACK_MODES:
            raise ValueError(f"fallback must be one of {FALLBACK_MODES}, got {self.fallback!r}")
        if self.probe_interval_s <= 0:
            raise ValueError(f"probe_interval_s must be > 0, got {self.probe_interval_s}")

    @property
    def enabled(self) -> bool:
        return self.failure_threshold > 0


Loader = Callable[["EngineConfig"], "Engine"]
FallbackBuilder = Callable[["EngineConfig", "ResolvedModel"], "Engine"]
Resolver = Callable[["EngineConfig"], "ResolvedModel"]
StateHook = Callable[[BreakerSnapshot], None]


class ModelGuard:
    """The breaker around one slot's primary engine, with its fallback and its prober.

    ``load(config)`` is the slot's unguarded load (builds the engine if needed),
    ``current()`` its engine if loaded, ``build_fallback(config, model)`` a CPU engine on
    ``model``'s files, ``resolve(config)`` what the source names now (for a fallback when the
    primary never loaded).
    """

    def __init__(
        self,
        guard: GuardConfig,
        *,
        load: Loader,
        current: Callable[[], Engine | None],
        build_fallback: FallbackBuilder,
        resolve: Resolver,
        on_change: StateHook | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.guard = guard
        self.breaker = CircuitBreaker(
            "model",
            failure_threshold=max(1, guard.failure_threshold),
            window_s=guard.window_s,
            reset_s=guard.probe_interval_s,
            clock=clock,
        )
        self._load = load
        self._current = current
        self._build_fallback = build_fallback
        self._resolve = resolve
        self._on_change = on_change
        self._clock = clock
        self._config: EngineConfig | None = None
        self._fallback: Engine | None = None
        self._fallback_failed_s: float | None = None  # a fallback that would not load, when
        self._fallback_lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._primary_device: str | None = None  # where the primary last ran
        self._prober: threading.Thread | None = None
        self._stopped = threading.Event()
        self._wakeup = threading.Event()
        self._probe_call: threading.Thread | None = None  # a probe's model call, if hung
        self.probes_run = 0
        self.fallback_loads = 0
        self._hung_calls = 0  # model calls of the primary that hung (the probe's included)
        self._hung_lock = threading.Lock()  # counted by batcher threads and the prober
        self.breaker.add_listener(self._changed)

    # --- the jobs' side -----------------------------------------------------------------
    def engine(self, config: EngineConfig) -> Engine:
        """The engine a job should use now: the primary while closed; the fallback, or
        ``ModelCircuitOpen`` at once, while open."""
        self._config = config
        if self.breaker.closed:
            engine = self._current()
            if engine is not None and engine.config == config:
                return engine  # the hot path: loaded, no lock
            with self._load_lock:  # one load at a time; none once it opened meanwhile
                if self.breaker.closed:
                    try:
                        engine = self._load(config)
                    except ModelUnavailable as exc:
                        self.breaker.record_failure(f"load: {describe_error(exc)}")
                        raise
                    self._primary_device = engine.backend.device
                    return engine
        fallback = self._fallback_engine(config)
        if fallback is not None:
            return fallback
        snapshot = self.breaker.snapshot()
        raise ModelCircuitOpen(
            f"model circuit breaker {snapshot.state.value} after {snapshot.consecutive_failures} "
            f"failures (last: {snapshot.last_error}); no fallback engine; retry in "
            f"{snapshot.retry_after_s:.1f} s",
            retry_after_s=round(snapshot.retry_after_s, 3),
        )

    def on_batch(self, failed: bool, error: str | None, *, hung: bool = False) -> None:
        """A model call of the primary engine ended, or hung (its batcher's hook)."""
        if hung:
            self._count_hung()
            reason = error or "ModelHung: the model call did not return"
            self.breaker.record_failure(reason)
            if self.breaker.closed:
                self.breaker.trip(reason)
        elif failed:
            self.breaker.record_failure(error or "model call failed")
        elif self.breaker.closed:
            self.breaker.record_success()  # resets the count; only the probe closes it

    @property
    def hung_calls(self) -> int:
        """Model calls of the primary that hung (the probe's included)."""
        return self._hung_calls

    def _count_hung(self) -> None:
        with self._hung_lock:
            self._hung_calls += 1

    def snapshot(self) -> BreakerSnapshot:
        return self.breaker.snapshot()

    def serving_fallback(self) -> Engine | None:
        """The fallback engine if one is loaded now."""
        return self._fallback

    # --- the fallback -------------------------------------------------------------------
    def fallback_exists(self) -> bool:
        """Whether this guard may serve from a CPU copy while open (see the module doc)."""
        if self.guard.fallback == "none":
            return False
        if self.guard.fallback == "cpu":
            return True
        if self._primary_device is None:  # auto, never loaded: a GPU if one was asked for
            return self._config is not None and self._config.device == "cuda"
        return self._primary_device != "cpu"  # auto: a GPU primary only

    def _fallback_engine(self, config: EngineConfig) -> Engine | None:
        if not self.fallback_exists():
            return None
        primary = self._current()
        with self._fallback_lock:
            fallback = self._fallback
            wanted = primary.model if primary is not None else None
            if fallback is not None and (wanted is None or fallback.model == wanted):
                return fallback
            now = self._clock()
            failed_s = self._fallback_failed_s
            if failed_s is not None and now - failed_s < self.guard.probe_interval_s:
                return None  # it would not load a moment ago: do not hammer the disk
            try:
                model = wanted if wanted is not None else self._resolve(config)
                fresh = self._build_fallback(config, model)
            except Exception as exc:  # any load error: park the jobs, try again later
                self._fallback_failed_s = now
                log.error("modq: fallback engine would not load: %s", describe_error(exc))
                return None
            self._fallback, self._fallback_failed_s = fresh, None
            self.fallback_loads += 1
        log.warning(
            "modq: model circuit open: serving %s v%s on the %s fallback",
            fresh.model.name,
            fresh.model.version,
            fresh.backend.device,
        )
        if fallback is not None:
            fallback.batcher.close()  # the primary moved to another version
        return fresh

    def _drop_fallback(self) -> None:
        with self._fallback_lock:
            fallback, self._fallback = self._fallback, None
            self._fallback_failed_s = None
        if fallback is not None:
            fallback.batcher.close()  # what is pending on it still runs
            log.info("modq: fallback engine released")

    # --- the probe ----------------------------------------------------------------------
    def probe(self) -> bool:
        """Take the trial if due and run one tiny inference on the primary; True if it
        closed the breaker."""
        config = self._config
        if config is None or not self.breaker.begin_trial():
            return False
        self.probes_run += 1
        try:
            engine = self._current()
            if engine is None or engine.config != config:
                engine = self._load(config)
            self._bounded_score(engine, config.call_timeout_s)
        except Exception as exc:  # the answer of the probe, never the prober's death
            self.breaker.record_failure(f"probe: {describe_error(exc)}")
            log.warning("modq: model probe failed, breaker stays open: %s", describe_error(exc))
            return False
        self._primary_device = engine.backend.device
        self.breaker.record_success()
        return True

    def _bounded_score(self, engine: Engine, timeout_s: float | None) -> None:
        """Score the probe text on ``engine``; ``ModelHung`` if it has not answered within
        ``timeout_s`` (or an earlier probe's call still has not)."""
        if timeout_s is None:
            engine.backend.score(PROBE_TEXTS)
            return
        stuck = self._probe_call
        if stuck is not None and stuck.is_alive():
            raise ModelHung("the last probe's model call has not returned yet")
        outcome: list[BaseException | None] = []

        def call() -> None:
            try:
                engine.backend.score(PROBE_TEXTS)
            except BaseException as exc:  # handed to the prober below
                outcome.append(exc)
            else:
                outcome.append(None)

        thread = threading.Thread(target=call, name="modq-model-probe-call", daemon=True)
        thread.start()
        thread.join(timeout_s)
        if thread.is_alive():
            self._probe_call = thread
            self._count_hung()
            raise ModelHung(f"the probe did not answer within {timeout_s:g} s")
        if outcome and outcome[0] is not None:
            raise outcome[0]

    def _probe_loop(self) -> None:
        while not self._stopped.is_set():  # woken at once by each change of state
            wait_s = self.breaker.retry_after_s() if not self.breaker.closed else None
            self._wakeup.wait(None if wait_s is None else max(wait_s, 0.05))
            self._wakeup.clear()
            if self._stopped.is_set():
                return
            if self.breaker.closed:
                continue
            config = self._config
            if config is not None and self._fallback is None:
                self._fallback_engine(config)  # warm: the next jobs need not wait for it
            self.probe()

    def _ensure_prober(self) -> None:
        if self._prober is None or not self._prober.is_alive():
            self._prober = threading.Thread(
                target=self._probe_loop, name="modq-model-probe", daemon=True
            )
            self._prober.start()

    def stop(self) -> None:
        self._stopped.set()
        self._wakeup.set()
        self._drop_fallback()

    # --- state changes ------------------------------------------------------------------
    def _changed(self, _name: str, old: BreakerState, new: BreakerState) -> None:
        snapshot = self.breaker.snapshot()
        if new is BreakerState.OPEN and old is BreakerState.CLOSED:
            log.error(
                "modq: model circuit breaker OPEN after %d failures (last: %s); %s; "
                "probing every %.1f s",
                snapshot.consecutive_failures,
                snapshot.last_error,
                "serving on a CPU fallback" if self.fallback_exists() else "jobs are parked",
                self.guard.probe_interval_s,
            )
            self._ensure_prober()
        elif new is BreakerState.CLOSED:
            log.warning("modq: model circuit breaker closed: the model answers again")
            self._drop_fallback()
        self._wakeup.set()
        if self._on_change is not None:
            self._on_change(snapshot)
