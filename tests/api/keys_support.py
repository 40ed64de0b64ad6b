"""A tiny FastAPI app around api.auth / api.ratelimit, served by a real uvicorn in a thread,
and a plain HTTP client: the keys and limits tested without the full API app."""

from __future__ import annotations

import contextlib
import json
import math
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import uvicorn
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from api.auth import Principal, authenticate, require_priority, require_review_scope
from api.ratelimit import RateLimiter
from modq.errors import Forbidden, ModerationError, RateLimited, Unauthenticated

STATUS = {Unauthenticated: 401, Forbidden: 403, RateLimited: 429}


async def _principal(request: Request) -> Principal:
    found = await authenticate(request)
    limiter: RateLimiter | None = getattr(request.app.state, "limiter", None)
    if limiter is not None:
        await limiter.admit(found)
    return found


Who = Annotated[Principal, Depends(_principal)]


async def _problem(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ModerationError)
    status = next((s for cls, s in STATUS.items() if isinstance(exc, cls)), 500)
    headers = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
    return JSONResponse(exc.to_dict(), status_code=status, headers=headers)


async def whoami(who: Who) -> dict[str, Any]:
    return {"key_id": who.key_id, "name": who.name, "priorities": sorted(who.allowed_priorities)}


async def jobs(priority: str, who: Who) -> dict[str, str]:
    require_priority(who, priority)
    return {"priority": priority}


async def reviews(who: Who) -> dict[str, bool]:
    require_review_scope(who)
    return {"ok": True}


def keys_app(limiter: RateLimiter | None = None) -> FastAPI:
    """Routes behind authenticate (and ``limiter``, if given), errors mapped to their status.
    The limiter is closed at shutdown, on the server's loop (its async connections live there)."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if limiter is not None:
            await limiter.aclose()

    app = FastAPI(lifespan=lifespan)
    app.state.limiter = limiter
    app.add_exception_handler(ModerationError, _problem)
    app.add_api_route("/whoami", whoami, methods=["GET"])
    app.add_api_route("/jobs/{priority}", jobs, methods=["POST"])
    app.add_api_route("/reviews", reviews, methods=["POST"])
    return app


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """``app`` on a real uvicorn server in a thread; yields its base URL."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def call(
    url: str, *, method: str = "GET", key: str | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], dict[str, Any]]:
    """(status, headers, JSON body) of one request."""
    sent = dict(headers or {})
    if key is not None:
        sent["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(
        url, method=method, headers=sent, data=b"" if method == "POST" else None
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), json.loads(exc.read())
