"""JSON in, or 415: a route that reads a body accepts only ``application/json`` (or a
``+json`` type), UTF-8 if a charset is named.

Checked when the route first reads its body, so an unknown path stays 404, a wrong method 405,
a route that takes no body never objects, and nothing of the body is read or parsed first."""

from __future__ import annotations

from email.message import Message as MimeHeader

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ACCEPTED = "application/json"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def is_json(content_type: str | None) -> bool:
    """Whether a Content-Type header names JSON (``application/json``, ``application/*+json``)
    in UTF-8 (no charset, or utf-8)."""
    if not content_type:
        return False
    header = MimeHeader()
    header["content-type"] = content_type
    if header.get_content_maintype() != "application":
        return False
    subtype = header.get_content_subtype()
    if subtype != "json" and not subtype.endswith("+json"):
        return False
    charset = header.get_param("charset")
    return charset is None or str(charset).lower().replace("_", "-") in ("utf-8", "utf8")


class JsonOnlyMiddleware:
    """415 ``unsupported_media_type`` (a problem, via the app's handlers) for a body that is
    not JSON, raised from the route's first read of it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        content_type = next(
            (v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"content-type"),
            None,
        )
        if scope.get("method") not in BODY_METHODS or is_json(content_type):
            await self.app(scope, receive, send)
            return

        async def refused() -> Message:
            got = f"got {content_type[:100]!r}" if content_type else "none was sent"
            raise HTTPException(
                415,
                f"send the body as JSON: Content-Type: {ACCEPTED} ({got})",
                headers={"Accept-Post": ACCEPTED},
            )

        await self.app(scope, refused, send)
