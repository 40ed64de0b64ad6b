"""The torch modules a model folder is scored with: (input_ids, attention_mask) -> scores.

Shared by the PyTorch backend (serving) and by training (ONNX export), so both run the same
graph. torch is imported inside the factories: importing this module costs nothing.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from gpu_worker.labels import LabelMapping


def mean_pool(hidden: Any, attention_mask: Any) -> Any:
    """Mean of token vectors over real (unpadded) tokens, then L2-normalised."""
    import torch

    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    summed = (hidden * mask).sum(dim=1)
    counts = mask.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(summed / counts, p=2.0, dim=1)


def _takes_token_types(model: Any) -> bool:
    return "token_type_ids" in inspect.signature(model.forward).parameters


def label_scores_module(model: Any, mapping: LabelMapping) -> Any:
    """A sequence-classification model → activation → max per canonical category."""
    import torch

    activation = mapping.activation
    token_types = _takes_token_types(model)

    class LabelScores(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            for k, cols in enumerate(mapping.columns()):
                self.register_buffer(f"columns_{k}", torch.tensor(cols, dtype=torch.long))
            self.category_count = len(mapping.categories)

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            extra = {"token_type_ids": torch.zeros_like(input_ids)} if token_types else {}
            logits = self.model(
                input_ids=input_ids, attention_mask=attention_mask, **extra
            ).logits.float()
            if activation == "sigmoid":
                probs = torch.sigmoid(logits)
            elif activation == "softmax":
                probs = torch.softmax(logits, dim=-1)
            else:
                probs = logits
            per_category = [
                probs.index_select(1, getattr(self, f"columns_{k}")).amax(dim=1)
                for k in range(self.category_count)
            ]
            return torch.stack(per_category, dim=1)

    return LabelScores().eval()


def pooled_heads_module(
    encoder: Any,
    weight: np.ndarray,
    bias: np.ndarray,
    lexical: tuple[np.ndarray, np.ndarray] | None = None,
) -> Any:
    """A sentence encoder → mean pooling → one linear head per category → sigmoid.

    ``lexical = (idf, lexical_weight)`` adds a second branch to each logit: word-piece
    presence x IDF, L2-normalised, times ``lexical_weight`` (categories x vocabulary), i.e. a
    TF-IDF + logistic-regression head over the same token ids (the default model's).
    """
    import torch

    token_types = _takes_token_types(encoder)

    class PooledHeads(torch.nn.Module):
        idf: Any  # a buffer, with the lexical branch

        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder
            self.head = torch.nn.Linear(weight.shape[1], weight.shape[0])
            with torch.no_grad():
                self.head.weight.copy_(torch.from_numpy(np.asarray(weight, np.float32)))
                self.head.bias.copy_(torch.from_numpy(np.asarray(bias, np.float32)))
            self.lexical: Any = None
            if lexical is not None:
                idf, lexical_weight = lexical
                self.register_buffer("idf", torch.from_numpy(np.asarray(idf, np.float32)))
                self.lexical = torch.nn.Linear(lexical_weight.shape[1], weight.shape[0], bias=False)
                with torch.no_grad():
                    self.lexical.weight.copy_(
                        torch.from_numpy(np.asarray(lexical_weight, np.float32))
                    )

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            extra = {"token_type_ids": torch.zeros_like(input_ids)} if token_types else {}
            hidden = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, **extra
            ).last_hidden_state
            logits = self.head(mean_pool(hidden, attention_mask))
            if self.lexical is not None:
                present = torch.zeros(
                    (input_ids.shape[0], self.idf.shape[0]), dtype=self.idf.dtype
                ).scatter(1, input_ids, attention_mask.to(self.idf.dtype))
                tfidf = torch.nn.functional.normalize(present * self.idf, p=2.0, dim=1)
                logits = logits + self.lexical(tfidf)
            return torch.sigmoid(logits)

    return PooledHeads().eval()
