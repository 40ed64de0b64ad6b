"""Celery's Redis result backend, made to outlive a Redis restart.

Stock Celery gives up on a caller blocked in ``.get()`` when one reconnect of its pub/sub
connection fails (``RuntimeError: Retry limit exceeded ... The Celery application must be
restarted``), so every app had to restart after a broker blip. Here a failed reconnect is
tried again on the next poll instead: a caller keeps waiting, through the outage, until its
own ``timeout``; results stored meanwhile are read back (``MGET``) when the connection
returns. Each reconnect attempt is bounded (``RECONNECT_ATTEMPT_S``), so ``.get(timeout=t)``
returns within about ``t`` plus one attempt.

The client's app (``modq.client.app``) and the worker's ``celeryconfig`` map the ``redis`` and
``rediss`` schemes to this class (``RESULT_BACKENDS``, a loader's ``override_backends``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery.backends import redis as celery_redis

log = logging.getLogger(__name__)

RECONNECT_ATTEMPT_S = 2.0  # one try at the pub/sub connection, before the waiter polls again
RETRY_PAUSE_S = 0.5  # between tries while the result store is down


class ResultConsumer(celery_redis.ResultConsumer):
    """Pub/sub listener that reconnects on a later poll when a reconnect fails."""

    _reconnect_due = False

    @contextmanager
    def reconnect_on_error(self) -> Iterator[None]:
        try:
            yield
        except TimeoutError:  # socket.timeout: an empty poll, not a lost connection
            raise
        except self._connection_errors:
            self._try_reconnect()

    def _try_reconnect(self) -> bool:
        try:
            self.backend.ensure(self._reconnect_pubsub, (), timeout=RECONNECT_ATTEMPT_S)
        except self._connection_errors as exc:
            if not self._reconnect_due:
                log.warning("modq: result store unreachable, waiters keep waiting (%s)", exc)
            self._reconnect_due = True
            return False
        if self._reconnect_due:
            log.warning("modq: result store reachable again; waiters resubscribed")
        self._reconnect_due = False
        return True

    def drain_events(self, timeout: float | None = None) -> None:
        if self._reconnect_due and not self._try_reconnect():
            time.sleep(RETRY_PAUSE_S if timeout is None else min(timeout, RETRY_PAUSE_S))
            return
        super().drain_events(timeout)

    def on_wait_for_pending(self, result: Any, **kwargs: Any) -> None:
        """The states stored before the wait began; when the store is down, the reconnect
        on the next poll reads them instead of failing the caller now."""
        try:
            super().on_wait_for_pending(result, **kwargs)
        except self._connection_errors:
            self._reconnect_due = True


class RedisBackend(celery_redis.RedisBackend):
    """Celery's Redis result backend with the reconnecting consumer above."""

    ResultConsumer = ResultConsumer


BACKEND_CLASS = f"{__name__}:RedisBackend"
# a Celery loader's ``override_backends``: the result store's URL scheme picks this class, and
# ``result_backend`` keeps its plain ``redis://`` URL
RESULT_BACKENDS = {"redis": BACKEND_CLASS, "rediss": BACKEND_CLASS}
