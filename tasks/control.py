"""Remote control of running workers: wake their model watchers after an alias move.

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


@control_command(name=REFRESH_COMMAND)
def refresh_model(state: Any) -> dict[str, Any]:
    """Wake this process's model watcher; it swaps between batches if the alias moved."""
    from gpu_worker.runtime import request_refresh

    return {"woken": request_refresh()}


def broadcast_model_refresh(timeout_s: float = 1.0) -> list[dict[str, Any]]:
    """Ask every worker to re-resolve its model now; their replies (one per worker)."""
    from tasks.app import app

    try:
        replies = app.control.broadcast(REFRESH_COMMAND, reply=True, timeout=timeout_s)
    except (KombuOperationalError, RedisError, OSError) as exc:
        raise BrokerUnavailable(f"cannot reach the broker to notify workers: {exc}") from exc
    return list(replies or [])
