"""Remote control of running workers: wake their model watchers after an alias move, and have
them re-read the running A/B experiment after `modq ab start/stop`.

Why a broadcast *and* polling: the broadcast reaches every connected worker at once, so a
promotion takes effect in about a second; polling (``MODQ_MODEL_POLL_INTERVAL_S``) catches the
workers the broadcast missed — one that was restarting or cut off, and prefork children, since
control commands run in the pool's parent process, which holds no model.
"""

from __future__ import annotations

from typing import Any

from celery.worker.control import control_command
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError

from modq.errors import BrokerUnavailable

REFRESH_COMMAND = "modq_refresh_model"
EXPERIMENT_REFRESH_COMMAND = "modq_refresh_experiment"


@control_command(name=REFRESH_COMMAND)
def refresh_model(state: Any) -> dict[str, Any]:
    """Wake this process's model watcher; it swaps between batches if the alias moved."""
    from gpu_worker.runtime import request_refresh

    return {"woken": request_refresh()}


@control_command(name=EXPERIMENT_REFRESH_COMMAND)
def refresh_experiment(state: Any) -> dict[str, Any]:
    """Have this process re-read the running experiment on its next job."""
    from tasks.pipeline import current_pipeline

    pipeline = current_pipeline()
    if pipeline is not None:
        pipeline.router.invalidate()
    return {"invalidated": pipeline is not None}


def broadcast_model_refresh(timeout_s: float = 1.0) -> list[dict[str, Any]]:
    """Ask every worker to re-resolve its model now; their replies (one per worker)."""
    return _broadcast(REFRESH_COMMAND, timeout_s)


def broadcast_experiment_refresh(timeout_s: float = 1.0) -> list[dict[str, Any]]:
    """Ask every worker to re-read the running experiment now; their replies."""
    return _broadcast(EXPERIMENT_REFRESH_COMMAND, timeout_s)


def _broadcast(command: str, timeout_s: float) -> list[dict[str, Any]]:
    from tasks.app import app

    try:
        replies = app.control.broadcast(command, reply=True, timeout=timeout_s)
    except (KombuOperationalError, RedisError, OSError) as exc:
        raise BrokerUnavailable(f"cannot reach the broker to notify workers: {exc}") from exc
    return list(replies or [])
