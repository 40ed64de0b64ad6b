"""Observers of a process's engines: every model call, each primary model that starts
serving, each change of the primary model's circuit breaker. tasks/ wires them to
Prometheus; this room knows no metrics. Hooks are inherited across fork."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from gpu_worker.batcher import BatchHook, BatchReport
from modq.circuit import BreakerSnapshot

if TYPE_CHECKING:
    from gpu_worker.runtime import Engine

log = logging.getLogger(__name__)

ServingHook = Callable[["Engine"], None]
BreakerHook = Callable[[BreakerSnapshot], None]
_batch_hooks: list[BatchHook] = []
_serving_hooks: list[ServingHook] = []
_breaker_hooks: list[BreakerHook] = []


def add_hooks(
    *,
    after_batch: BatchHook | None = None,
    on_serving: ServingHook | None = None,
    on_breaker: BreakerHook | None = None,
) -> None:
    """Observe this process's engines: ``after_batch`` gets a report of each model call of
    any engine (primary, fallback or A/B variant); ``on_serving`` gets the primary engine
    whenever one starts serving (first load, every swap); ``on_breaker`` each change of state
    of the primary model's circuit breaker. Adding the same hook twice adds it once; hooks
    are inherited across fork."""
    if after_batch is not None and after_batch not in _batch_hooks:
        _batch_hooks.append(after_batch)
    if on_serving is not None and on_serving not in _serving_hooks:
        _serving_hooks.append(on_serving)
    if on_breaker is not None and on_breaker not in _breaker_hooks:
        _breaker_hooks.append(on_breaker)


def remove_hooks(
    *,
    after_batch: BatchHook | None = None,
    on_serving: ServingHook | None = None,
    on_breaker: BreakerHook | None = None,
) -> None:
    """Stop observing with hooks added by ``add_hooks`` (absent ones are ignored)."""
    if after_batch in _batch_hooks:
        _batch_hooks.remove(after_batch)
    if on_serving in _serving_hooks:
        _serving_hooks.remove(on_serving)
    if on_breaker in _breaker_hooks:
        _breaker_hooks.remove(on_breaker)


def after_batch(report: BatchReport) -> None:
    for hook in _batch_hooks:
        hook(report)


def now_serving(engine: Engine) -> None:
    for hook in _serving_hooks:
        try:
            hook(engine)
        except Exception:  # an observer never stops a model from serving
            log.exception("modq: on_serving hook failed")


def breaker_changed(snapshot: BreakerSnapshot) -> None:
    for hook in _breaker_hooks:
        try:
            hook(snapshot)
        except Exception:  # an observer never stops the breaker
            log.exception("modq: on_breaker hook failed")
