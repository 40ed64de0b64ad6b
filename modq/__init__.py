"""modq: a content-moderation inference queue.

Apps use the client::

    from modq import moderate, moderate_many, record_review, configure

Layer 0 (``modq.errors``, ``modq.schemas``, ``modq.settings``, ...) imports nothing internal;
``modq.broker`` holds what producers and workers share of the broker; ``modq.client`` is the
producer API. The client is imported on first use, so ``import modq.errors`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from celery import Celery

    from modq.client import configure, moderate, moderate_many, record_review

    app: Celery

__all__ = ["app", "configure", "moderate", "moderate_many", "record_review"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        import modq.client

        return getattr(modq.client, name)
    raise AttributeError(f"module 'modq' has no attribute {name!r}")
