"""Fault injection for the model-failure scenario and its tests: never part of modq itself.

A worker started with this folder on ``PYTHONPATH`` imports it at interpreter start (Python's
``sitecustomize`` hook), and it wraps ``gpu_worker.backends.onnx.OnnxBackend``:

- ``MODQ_FAULT_EVENTS=<file>``: one line per model load (``load``) and per model call
  (``run primary`` / ``run fallback``) is appended there, so a test counts how often the
  model was touched from outside the code under test;
- ``MODQ_FAULT_GPU_TRIGGER=<file>``: an engine asked for on ``auto`` or ``cuda`` says it runs on
  ``cuda`` (there is no GPU here) and, while that file exists, each of its model calls raises
  the way ONNX Runtime reports a CUDA fault. An engine asked for on ``cpu`` (the fallback the
  runtime builds) is left alone: it is the real CPU copy of the model.
- ``MODQ_FAULT_HANG_TRIGGER=<file>``: while that file exists, every model call hangs (blocks,
  raising nothing) until the file is gone, as a wedged GPU or a stuck session does; each such
  call writes a ``hang`` event when it starts.
"""

from __future__ import annotations

import os
import time

CUDA_FAULT = (
    "[ONNXRuntimeError] : 1 : FAIL : CUDA failure 700: an illegal memory access was "
    "encountered ; GPU=0 ; expr=cudaStreamSynchronize(stream) (injected by bench/faults/inject)"
)
EVENTS = os.environ.get("MODQ_FAULT_EVENTS")
TRIGGER = os.environ.get("MODQ_FAULT_GPU_TRIGGER")
HANG = os.environ.get("MODQ_FAULT_HANG_TRIGGER")


def _record(event: str) -> None:
    if EVENTS:
        fd = os.open(EVENTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{event}\n".encode())
        finally:
            os.close(fd)


def _install() -> None:
    from gpu_worker.backends import onnx

    backend = onnx.OnnxBackend
    real_init, real_run = backend.__init__, backend._run
    real_device = backend.device

    def __init__(self, folder, *, device="auto", **options):
        self._fault_gpu = bool(TRIGGER) and device != "cpu"
        _record("load")
        real_init(self, folder, device=device, **options)

    def _run(self, token_ids):
        gpu = getattr(self, "_fault_gpu", False)
        _record("run primary" if gpu or not TRIGGER else "run fallback")
        if gpu and TRIGGER and os.path.exists(TRIGGER):
            raise RuntimeError(CUDA_FAULT)
        if HANG and os.path.exists(HANG):
            _record("hang")
            while os.path.exists(HANG):
                time.sleep(0.05)
        return real_run(self, token_ids)

    def device(self):
        return "cuda" if getattr(self, "_fault_gpu", False) else real_device.fget(self)

    backend.__init__ = __init__  # type: ignore[method-assign]
    backend._run = _run  # type: ignore[method-assign]
    backend.device = property(device)  # type: ignore[assignment,method-assign]


if EVENTS or TRIGGER or HANG:
    _install()
