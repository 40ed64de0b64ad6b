"""Give freed heap memory back to the OS between tasks.

glibc keeps memory that Python freed (results of a big message, a batch's tensors) in its
heaps, so a worker's RSS climbs to the high-water mark of everything it ever held and stays
there, which looks like a leak and gets workers killed by memory limits. ``malloc_trim(0)``
returns the free pages; it takes about a millisecond, so workers call it after a task at most
every ``MODQ_MALLOC_TRIM_INTERVAL_S``. Elsewhere than glibc it is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time
from typing import Any

from celery.signals import task_postrun

from modq.settings import get_settings

_lock = threading.Lock()
_last_trim_s = time.monotonic()
trims_done = 0  # for modq_stats and tests


def _load_trim() -> Any:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None


_malloc_trim = _load_trim()


def trim_heap() -> bool:
    """Return free heap pages to the OS now; False where there is no ``malloc_trim``."""
    global trims_done
    if _malloc_trim is None:
        return False
    _malloc_trim(0)
    trims_done += 1
    return True


@task_postrun.connect
def _trim_after_task(**_: Any) -> None:
    global _last_trim_s
    interval_s = get_settings().malloc_trim_interval_s
    if interval_s <= 0 or time.monotonic() - _last_trim_s < interval_s:
        return
    if not _lock.acquire(blocking=False):  # another task thread is trimming
        return
    try:
        _last_trim_s = time.monotonic()
        trim_heap()
    finally:
        _lock.release()
