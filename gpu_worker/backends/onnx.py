"""ONNX Runtime backend: CUDA execution provider when present, else CPU."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gpu_worker.backend import Backend, TokenIds, pad_batch
from gpu_worker.manifest import ModelManifest
from modq.errors import ModelUnavailable

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
    def __init__(self, folder: Path, *, device: str = "auto", intra_op_threads: int = 1) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        folder = Path(folder)
        super().__init__(ModelManifest.read(folder))
        try:
            self._tokenizer = Tokenizer.from_file(str(folder / self.manifest.tokenizer_file))
        except Exception as exc:  # tokenizers raises plain Exception on bad files
            raise ModelUnavailable(f"cannot load tokenizer in {folder}: {exc}") from exc
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=self.manifest.max_length_tokens)
        pad = self._tokenizer.token_to_id("[PAD]")
        self._pad_id = 0 if pad is None else pad

        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        providers = choose_providers(device, ort.get_available_providers())
        try:
            self._session = ort.InferenceSession(
                str(folder / self.manifest.onnx_file), sess_options=options, providers=providers
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelUnavailable(f"cannot load ONNX model in {folder}: {exc}") from exc
        self.providers: tuple[str, ...] = tuple(self._session.get_providers())
        # read back from the session: onnxruntime-gpu on a machine without CUDA offers the CUDA
        # provider, then silently runs on CPU
        self._device = "cuda" if CUDA in self.providers else "cpu"

    @property
    def device(self) -> str:
        return self._device

    def tokenize(self, texts: Sequence[str]) -> list[TokenIds]:
        return [e.ids for e in self._tokenizer.encode_batch(list(texts))]

    def _run(self, token_ids: Sequence[TokenIds]) -> np.ndarray:
        ids, mask = pad_batch(token_ids, self._pad_id)
        feeds = dict(zip(self.manifest.input_names, (ids, mask), strict=True))
        (scores,) = self._session.run([self.manifest.output_name], feeds)
        return np.asarray(scores, dtype=np.float32)
