"""The worker's heartbeat thread (tasks/heartbeat.py) on a real private Redis."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import pytest
from redis import Redis

from modq import heartbeat
from tasks.heartbeat import Heartbeat
from tests.polling import wait_until


def test_an_unexpected_error_in_one_beat_never_stops_the_heartbeat(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A state read that raises (not a Redis or OS error) used to end the daemon thread for
    good: the worker never counted as ready again. Now it is logged once and beats go on."""
    node, calls = f"test-heartbeat-{uuid.uuid4().hex}", []

    def state() -> dict[str, Any]:
        calls.append(1)
        if len(calls) <= 3:
            raise ValueError("a breaker snapshot that failed")
        return {"model_loaded": True}

    redis = Redis.from_url(redis_url)
    beating = Heartbeat(Redis.from_url(redis_url), node, interval_s=0.05, state=state)
    with caplog.at_level(logging.ERROR, logger="tasks.heartbeat"):
        beating.start()
        try:
            raw = wait_until(
                lambda: redis.hget(heartbeat.KEY, node), timeout_s=30, message="no beat"
            )
        finally:
            beating.stop()
    assert json.loads(raw)["model_loaded"] is True
    failures = [r for r in caplog.records if "heartbeat not recorded" in r.getMessage()]
    assert len(failures) == 1  # three failures in a row, one line
    assert redis.hget(heartbeat.KEY, node) is None  # stopped: forgotten
