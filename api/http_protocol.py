"""uvicorn's h11 protocol with a bound on the request header, and its own errors as problem
details.

uvicorn bounds the idle time between requests (``timeout_keep_alive``) and the header's size
(``h11_max_incomplete_event_size``), but not the time a client takes to send a header: one
that trickles a byte a second holds its connection for ever. Here a request's header must be
complete within ``MODQ_API_HEADER_TIMEOUT_S`` of its first byte (or of the connection, for
the first request); past it the client gets 408 and the connection is closed. The body's bound
is an ASGI middleware (``api.bodylimit``). A request h11 cannot parse gets uvicorn's 400 as
``application/problem+json`` like every other error of the API.
"""

from __future__ import annotations

import asyncio
import json
from http import HTTPStatus
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from api.problems import PROBLEM_JSON
from modq.settings import get_settings


def problem_bytes(status: int, code: str, detail: str) -> bytes:
    """A whole HTTP/1.1 response, problem+json, that closes the connection."""
    body = json.dumps(
        {
            "type": f"urn:modq:error:{code}",
            "title": HTTPStatus(status).phrase,
            "status": status,
            "detail": detail,
            "instance": None,
            "code": code,
        }
    ).encode()
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        f"content-type: {PROBLEM_JSON}\r\ncontent-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


class TimedH11Protocol(H11Protocol):
    """``H11Protocol`` + a header deadline + problem+json for unparsable requests."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout_s = get_settings().api_header_timeout_s
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:
            self._arm_header_timer()  # the first bytes of the next request's header
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm_header_timer()  # the header is complete (or the request refused)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.conn.their_state is not h11.IDLE:
            self._disarm_header_timer()

    def send_400_response(self, msg: str) -> None:
        self._disarm_header_timer()
        self.transport.write(problem_bytes(400, "bad_request", "invalid HTTP request"))
        self.transport.close()

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_late)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_late(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        self.transport.write(
            problem_bytes(
                408,
                "request_timeout",
                f"the request header did not arrive within {self.header_timeout_s:g} s",
            )
        )
        self.transport.close()
