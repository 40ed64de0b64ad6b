"""Bench-only Celery app: one task = one text, no batching, no cache, no policy, no SQL.

Two models behind the same task, chosen by ``MODQ_BENCH_SEED_BACKEND``:
- ``torch``: the seed's design — the MiniLM encoder and our heads (``heads.npz``) as a PyTorch
  fp32 module run eagerly per request, tokenized by the transformers fast tokenizer (what the
  seed's FastAPI service + TorchServe handler did);
- ``onnx``: the served ONNX model (``OnnxBackend``), one text per call.

Run as a real worker with 2 prefork children, one thread each::

    MODQ_BENCH_REDIS_URL=redis://... MODQ_BENCH_SEED_BACKEND=torch MODQ_MODEL_DIR=models/current \\
        celery -A bench.seed_app worker --pool processes --concurrency 2 -Q bench-seed
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from celery import Celery
from celery.signals import worker_process_init

QUEUE = "bench-seed"
TASK = "bench.score_one"
MAX_LENGTH_TOKENS = 256


def make_app(redis_url: str) -> Celery:
    """The app on ``redis_url`` (broker and results); the producer side builds one too."""
    app = Celery("modq-bench-seed", broker=redis_url, backend=redis_url)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_default_queue=QUEUE,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
    )
    return app


app = make_app(os.environ.get("MODQ_BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"))


class _TorchModel:
    """Encoder + heads as one eager PyTorch module, one thread per process."""

    def __init__(self, model_dir: Path) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        from bench.models import fp32_source
        from training.encoder import encoder_dir
        from training.export import classifier_module
        from training.heads import load_heads

        torch.set_num_threads(1)
        folder = encoder_dir()
        self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        encoder = AutoModel.from_pretrained(folder, local_files_only=True)
        fp32 = fp32_source(model_dir)  # an int8 served model: the heads of its fp32 source
        if fp32 is None:
            raise RuntimeError(f"no fp32 source (heads.npz) for {model_dir}")
        self.module = classifier_module(encoder, load_heads(str(fp32 / "heads.npz")))

    def score(self, text: str) -> list[float]:
        import torch

        batch = self.tokenizer(
            text, truncation=True, max_length=MAX_LENGTH_TOKENS, return_tensors="pt"
        )
        with torch.inference_mode():
            scores = self.module(batch["input_ids"], batch["attention_mask"])
        return [float(s) for s in scores[0]]


class _OnnxModel:
    def __init__(self, model_dir: Path) -> None:
        from gpu_worker.backends.onnx import OnnxBackend

        self.backend = OnnxBackend(model_dir, device="cpu", intra_op_threads=1)

    def score(self, text: str) -> list[float]:
        return [float(s) for s in self.backend.score([text])[0]]


_model: _TorchModel | _OnnxModel | None = None


def _load() -> _TorchModel | _OnnxModel:
    global _model
    if _model is None:
        model_dir = Path(os.environ.get("MODQ_MODEL_DIR", "models/current"))
        kind = os.environ.get("MODQ_BENCH_SEED_BACKEND", "torch")
        _model = _TorchModel(model_dir) if kind == "torch" else _OnnxModel(model_dir)
    return _model


@worker_process_init.connect
def _load_in_child(**_: Any) -> None:
    _load()


@app.task(name=TASK)
def score_one(text: str) -> list[float]:
    """Scores of one text (one model call per task)."""
    return _load().score(text)
