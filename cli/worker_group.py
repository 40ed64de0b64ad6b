"""Several worker processes behind one ``modq worker`` command, chosen for the device.

One threads-pool worker holds one GIL: on a CPU, the Python around each job (Celery, Redis,
SQL) of every task thread runs on one core while the model runs on the other. Two worker
processes, each with its own model and single-threaded ONNX Runtime, use both cores the way the
ceiling's best layout does (2 processes x 1 thread; `python -m bench --worker-processes 2`:
per-item int8 236 -> 273 texts/s on 2 cores, bulk 708 -> 654, fp32 unchanged). A GPU takes one
process per device.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from types import FrameType

AUTO = "auto"


def cuda_available() -> bool:
    """True if ONNX Runtime offers CUDA on this machine."""
    import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


def processes_for(choice: str, *, device: str, cores: int | None = None) -> int:
    """Worker processes for ``choice`` (a count, or ``auto``): ``auto`` is one on a GPU
    (``device`` cuda, or auto with CUDA present) and one per core on a CPU."""
    if choice != AUTO:
        try:
            count = int(choice)
        except ValueError:
            count = 0
        if count < 1:
            raise ValueError(f"processes must be 'auto' or a whole number >= 1, got {choice!r}")
        return count
    if device == "cuda" or (device == AUTO and cuda_available()):
        return 1
    return max(1, cores if cores is not None else os.cpu_count() or 1)


def metrics_ports(base: int, count: int) -> list[int]:
    """Each process's metrics port: ``base + i`` for process i (all 0 when ``base`` is 0: off)."""
    if base == 0:
        return [0] * count
    if base + count - 1 > 65535:
        raise ValueError(f"metrics ports {base}..{base + count - 1} run past 65535")
    return [base + index for index in range(count)]


def run_group(
    commands: Sequence[Sequence[str]],
    envs: Sequence[Mapping[str, str]],
    *,
    keep_fds: Sequence[Sequence[int]] = (),
    poll_s: float = 0.5,
) -> int:
    """Run the worker commands side by side, each with its environment (and the file
    descriptors in ``keep_fds[i]``: its node name's claim, cli/worker_names.py). SIGTERM and
    SIGINT go to each (a warm shutdown: each finishes and acknowledges what it holds); when one
    exits on its own, the others are stopped too, so a supervisor sees the group fail and
    restarts it whole. Returns 0 if all exited cleanly, else the first non-zero status."""
    fds = list(keep_fds) or [()] * len(commands)
    children = [
        subprocess.Popen(list(command), env=dict(env), pass_fds=tuple(kept))
        for command, env, kept in zip(commands, envs, fds, strict=True)
    ]

    signalled = False  # a second SIGTERM would cut a child's warm shutdown short

    def stop_all(signum: int, _frame: FrameType | None = None) -> None:
        nonlocal signalled
        signalled = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = {s: signal.signal(s, stop_all) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        while all(child.poll() is None for child in children):
            time.sleep(poll_s)
        if not signalled:  # one exited on its own: stop the rest
            stop_all(signal.SIGTERM)
        statuses = [child.wait() for child in children]
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return next((status for status in statuses if status != 0), 0)
