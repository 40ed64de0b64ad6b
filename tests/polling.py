"""Waiting in tests for something another process does, with a bound instead of a sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    check: Callable[[], T], *, timeout_s: float, message: str, interval_s: float = 0.05
) -> T:
    """The first truthy value ``check()`` returns; ``AssertionError(message)`` after
    ``timeout_s`` without one."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(interval_s)
