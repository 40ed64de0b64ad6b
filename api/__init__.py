"""The HTTP front of modq (FastAPI, served by uvicorn via `modq api`): a producer like any other.

It validates a request, enqueues it on its priority queue through the client's producer path,
and waits on the result with a deadline. It loads no model. ``create_app(settings)`` builds it
(imported on first use, so ``import api.auth`` does not build the whole app).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from api.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from api.app import create_app

        return create_app
    raise AttributeError(f"module 'api' has no attribute {name!r}")
