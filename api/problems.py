"""One error shape and one status table: every error becomes RFC 9457 problem details.

A ``modq.errors`` type maps to its HTTP status in ``STATUS_BY_ERROR`` (first match wins, so a
subclass sits before its base); FastAPI's validation errors (422), malformed JSON (400),
Starlette's HTTP errors (404 route, 405, 408 and 413 body), a body that is not JSON (415,
``api.content_type``) and a request uvicorn cannot parse or whose header is too slow (400, 408,
``api.http_protocol``) take the same shape. Anything else is a 500
that names only the exception's type. The body is ``application/problem+json``::

    {"type": "urn:modq:error:invalid_content", "title": "Unprocessable Content",
     "status": 422, "detail": "content is empty", "instance": "/v1/moderate",
     "code": "invalid_content", "field": "content"}
"""

from __future__ import annotations

import logging
import math
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from modq.errors import (
    BrokerUnavailable,
    DeadlineExceeded,
    Forbidden,
    InvalidContent,
    JobExpired,
    JobFailed,
    ModelUnavailable,
    ModerationError,
    Overloaded,
    RateLimited,
    StorageUnavailable,
    TooLarge,
    Unauthenticated,
    UnknownContent,
    UnknownJob,
)

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

# modq error -> HTTP status; subclasses before their bases (first isinstance match wins)
STATUS_BY_ERROR: tuple[tuple[type[ModerationError], int], ...] = (
    (TooLarge, 413),
    (UnknownContent, 404),
    (InvalidContent, 422),
    (UnknownJob, 404),
    (Unauthenticated, 401),
    (Forbidden, 403),
    (RateLimited, 429),
    (Overloaded, 503),
    (DeadlineExceeded, 503),
    (JobExpired, 503),  # its `expires` passed before a worker ran it: never run, send again
    (BrokerUnavailable, 503),
    (StorageUnavailable, 503),
    (ModelUnavailable, 503),
    (JobFailed, 500),  # the worker failed outside modq's tree: not the caller's input
)
HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "too_large",
    415: "unsupported_media_type",
}
DOCUMENTED_STATUSES = (400, 401, 403, 404, 405, 408, 413, 415, 422, 429, 503)


class Problem(BaseModel):
    """RFC 9457 problem details, with modq's stable ``code`` and the error's details."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    code: str


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries: each status answers a Problem as problem+json."""
    return {
        status: {
            "model": Problem,
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


def status_of(error: ModerationError) -> int:
    for kind, status in STATUS_BY_ERROR:
        if isinstance(error, kind):
            return status
    return 500


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """A problem+json response."""
    body = {
        "type": f"urn:modq:error:{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": instance,
        "code": code,
        **{k: v for k, v in extensions.items() if k not in _RESERVED},
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


_RESERVED = frozenset({"type", "title", "status", "detail", "instance", "code"})


def error_response(error: ModerationError, request: Request) -> JSONResponse:
    """The problem for a modq error, with Retry-After on 429 and 503 and a Bearer challenge
    on 401."""
    status = status_of(error)
    headers: dict[str, str] = {}
    if isinstance(error, RateLimited):
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after_s)))
    elif status == 503:
        settings = getattr(request.app.state, "settings", None)
        headers["Retry-After"] = str(settings.api_retry_after_s if settings else 1)
    elif status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="modq"'
    if status == 500 and not isinstance(error, JobFailed):
        log.error("modq api: unmapped %s on %s", type(error).__name__, request.url.path)
    return problem(
        status,
        error.code,
        error.message,
        instance=request.url.path,
        headers=headers,
        **_json_safe(error.details),
    )


def _json_safe(details: dict[str, object]) -> dict[str, Any]:
    return {
        k: v if isinstance(v, str | int | float | bool | type(None)) else str(v)
        for k, v in details.items()
    }


async def _on_modq_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ModerationError)
    return error_response(error, request)


async def _on_validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    # never echo the input back: it may be the moderated text
    issues = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
        for e in error.errors()
    ]
    if any(issue["type"] == "json_invalid" for issue in issues):
        return problem(
            400, "malformed_json", "the body is not valid JSON", instance=request.url.path
        )
    first = issues[0] if issues else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(part) for part in first["loc"])
    return problem(
        422,
        "invalid_request",
        f"{where}: {first['msg']}" if where else str(first["msg"]),
        instance=request.url.path,
        errors=issues,
    )


async def _on_http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    code = HTTP_CODES.get(error.status_code, "http_error")
    return problem(
        error.status_code,
        code,
        str(error.detail),
        instance=request.url.path,
        headers=dict(error.headers or {}),
    )


async def _on_unexpected(request: Request, error: Exception) -> JSONResponse:
    log.exception("modq api: unexpected %s on %s", type(error).__name__, request.url.path)
    return problem(
        500, "internal_error", f"internal error ({type(error).__name__})", instance=request.url.path
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Route every error of ``app`` through the one problem shape."""
    app.add_exception_handler(ModerationError, _on_modq_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
