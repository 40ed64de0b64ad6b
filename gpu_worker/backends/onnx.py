"""ONNX Runtime backend: CUDA execution provider when present, else CPU.

On CUDA (read back from the session, never assumed) two things change, both chosen at run
time and both off on CPU, where the plain ``session.run`` path stays as it was:
- I/O binding: token ids are bound from numpy, the scores are left on the device and copied
  back once per batch (``gpu_io_binding``).
- fp16: an fp16 copy of the model (made once, cached next to it) replaces the fp32 session if
  its scores on a fixed set of probe texts stay within ``gpu_fp16_max_abs_diff`` of fp32's;
  otherwise the worker stays on fp32 and logs why (``gpu_fp16``). ``precision`` says which.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gpu_worker.backend import Backend, TokenIds, open_tokenizer, pad_batch
from gpu_worker.manifest import ModelManifest
from modq.errors import ModelUnavailable
from modq.settings import get_settings

if TYPE_CHECKING:
    from tokenizers import Tokenizer

log = logging.getLogger(__name__)

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def choose_providers(device: str, available: Sequence[str]) -> list[str]:
    """``auto`` takes CUDA when ONNX Runtime offers it; ``cuda`` insists on it."""
    if device == "cpu":
        return [CPU]
    if CUDA in available:
        return [CUDA, CPU]
    if device == "cuda":
        raise ModelUnavailable(f"device=cuda asked for, but ONNX Runtime offers only {available}")
    return [CPU]


class OnnxBackend(Backend):
    """``fp16``, ``io_binding`` and ``fp16_max_abs_diff`` default to the settings, fp16 and
    binding applying only where the session really runs on CUDA; pass them to force a path
    (tests run both on CPU)."""

    def __init__(
        self,
        folder: Path,
        *,
        device: str = "auto",
        intra_op_threads: int = 1,
        fp16: bool | None = None,
        io_binding: bool | None = None,
        fp16_max_abs_diff: float | None = None,
    ) -> None:
        import onnxruntime as ort

        folder = Path(folder)
        super().__init__(ModelManifest.read(folder))
        self._tokenizer, self._pad_id = open_tokenizer(
            folder / self.manifest.tokenizer_file, self.manifest.max_length_tokens
        )

        self._options = ort.SessionOptions()
        self._options.intra_op_num_threads = intra_op_threads
        self._options.inter_op_num_threads = 1
        self._providers = choose_providers(device, ort.get_available_providers())
        model_path = folder / self.manifest.onnx_file
        self._session = self._open(model_path)
        self.providers: tuple[str, ...] = tuple(self._session.get_providers())
        # read back from the session: onnxruntime-gpu on a machine without CUDA offers the CUDA
        # provider, then silently runs on CPU
        self._device = "cuda" if CUDA in self.providers else "cpu"

        settings = get_settings()
        on_cuda = self._device == "cuda"
        self.io_binding = (
            (settings.gpu_io_binding and on_cuda) if io_binding is None else io_binding
        )
        self.bound_runs = 0  # batches run through I/O binding
        self.precision = "fp32"
        self.fp16_max_abs_diff: float | None = None  # measured on the probe texts, if tried
        self.fp16_refused: str | None = None  # why fp16 was asked for and not used
        if (settings.gpu_fp16 and on_cuda) if fp16 is None else fp16:
            bound = (
                settings.gpu_fp16_max_abs_diff if fp16_max_abs_diff is None else fp16_max_abs_diff
            )
            self._try_fp16(model_path, bound)

    @property
    def device(self) -> str:
        return self._device

    def tokenize(self, texts: Sequence[str]) -> list[TokenIds]:
        return [e.ids for e in self._tokenizer.encode_batch(list(texts))]

    def text_tokenizer(self) -> Tokenizer:
        return self._tokenizer

    def _run(self, token_ids: Sequence[TokenIds]) -> np.ndarray:
        return self._score(self._session, token_ids)

    def _open(self, path: Path) -> Any:
        import onnxruntime as ort

        try:
            return ort.InferenceSession(
                str(path), sess_options=self._options, providers=self._providers
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelUnavailable(f"cannot load ONNX model {path}: {exc}") from exc

    def _score(self, session: Any, token_ids: Sequence[TokenIds]) -> np.ndarray:
        ids, mask = pad_batch(token_ids, self._pad_id)
        if not self.io_binding:
            feeds = dict(zip(self.manifest.input_names, (ids, mask), strict=True))
            (scores,) = session.run([self.manifest.output_name], feeds)
            return np.asarray(scores, dtype=np.float32)
        binding = session.io_binding()
        for name, array in zip(self.manifest.input_names, (ids, mask), strict=True):
            binding.bind_cpu_input(name, array)
        # the scores stay where the model ran until the one copy back below
        binding.bind_output(self.manifest.output_name, self._device)
        session.run_with_iobinding(binding)
        (scores,) = binding.copy_outputs_to_cpu()
        self.bound_runs += 1
        return np.asarray(scores, dtype=np.float32)

    def _try_fp16(self, model_path: Path, bound: float) -> None:
        """Swap in the fp16 session if it passes the parity check; else say why and stay."""
        from gpu_worker.backends.onnx_fp16 import (
            PROBE_TEXTS,
            ensure_fp16_copy,
            fp16_path_for,
            is_quantized,
        )

        if is_quantized(model_path):
            self._refuse_fp16("the model is quantized (int8); fp16 applies to fp32 models")
            return
        try:
            fp16_path = ensure_fp16_copy(
                model_path, fp16_path_for(model_path, self.manifest.version)
            )
            session = self._open(fp16_path)
        except Exception as exc:  # onnx/onnxruntime conversion errors are untyped
            self._refuse_fp16(f"the fp16 copy could not be made or loaded: {exc}")
            return
        probe = self.tokenize(PROBE_TEXTS)
        diff = float(
            np.max(np.abs(self._score(session, probe) - self._score(self._session, probe)))
        )
        self.fp16_max_abs_diff = diff
        if not np.isfinite(diff) or diff > bound:
            self._refuse_fp16(f"fp16 scores differ from fp32 by {diff:.2e} > {bound:.2e} (parity)")
            return
        self._session = session
        self.precision = "fp16"
        log.info("modq: fp16 model %s in use (max abs diff %.2e on probes)", fp16_path, diff)

    def _refuse_fp16(self, why: str) -> None:
        self.fp16_refused = why
        log.warning("modq: staying on fp32: %s", why)
