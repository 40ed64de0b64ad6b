"""The request body's limits: size (``api_max_body_bytes``) and time (``api_body_timeout_s``).

A declared Content-Length past the size is refused before a byte is read; a chunked body is
counted as it arrives: both answer 413. A body still incomplete ``api_body_timeout_s`` after
its request's header answers 408 and the connection is closed, so a client trickling bytes
cannot hold a connection (the header's own bound is ``api.http_protocol``)."""

from __future__ import annotations

import asyncio

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import PROBLEM_JSON, problem

CLOSE = {"Connection": "close"}


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float = 30.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            response = problem(
                413,
                "too_large",
                f"the body has {declared} bytes, the limit is {self.max_bytes}",
                instance=scope.get("path"),
                limit=self.max_bytes,
            )
            assert response.media_type == PROBLEM_JSON
            await response(scope, receive, send)
            return
        seen = 0
        complete = False
        deadline = asyncio.get_running_loop().time() + self.timeout_s

        async def counted() -> Message:
            nonlocal seen, complete
            if complete:  # later reads only listen for a disconnect: no deadline
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise HTTPException(
                    408,
                    f"the body did not arrive within {self.timeout_s:g} s of the header",
                    headers=CLOSE,
                ) from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if seen > self.max_bytes:
                    raise HTTPException(
                        413, f"the body is over the limit of {self.max_bytes} bytes"
                    )
            else:
                complete = True
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
