"""Signed webhooks: the HMAC-SHA256 signature modq puts on every delivery, and its check.

A delivery is a POST of a JSON body with the header::

    Modq-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}.{body}")>

A receiver recomputes the HMAC over the raw body bytes with the shared secret
(``MODQ_WEBHOOK_SECRET``), compares it in constant time and refuses a timestamp older than its
tolerance (a replayed delivery). ``verify`` does exactly that; docs/api.md shows it in a few
lines for receivers that do not run Python.

Also here, pure: which callback URLs are acceptable (scheme, host allow-list, addresses).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from modq.errors import InvalidContent

SIGNATURE_HEADER = "Modq-Signature"
DELIVERY_HEADER = "Modq-Delivery"  # "<job_id>:<event>": the same on every retry (dedupe on it)
EVENT_HEADER = "Modq-Event"
SUCCEEDED = "job.succeeded"
FAILED = "job.failed"
DEFAULT_TOLERANCE_S = 300
MAX_URL_CHARS = 2048


def _mac(secret: bytes, timestamp_s: int, body: bytes) -> str:
    return hmac.new(secret, f"{timestamp_s}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: bytes, body: bytes, *, timestamp_s: int | None = None) -> str:
    """The ``Modq-Signature`` header value for ``body`` sent at ``timestamp_s`` (now)."""
    stamp = int(time.time()) if timestamp_s is None else timestamp_s
    return f"t={stamp},v1={_mac(secret, stamp, body)}"


def verify(
    secret: bytes,
    body: bytes,
    header: str,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now_s: float | None = None,
) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` within ``tolerance_s`` of now.

    Any ``v1`` entry may match (a sender rotating secrets may send two)."""
    stamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            stamp = int(value)
        elif name == "v1":
            candidates.append(value)
    if stamp is None or not candidates:
        return False
    now = time.time() if now_s is None else now_s
    if abs(now - stamp) > tolerance_s:
        return False
    expected = _mac(secret, stamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)


def webhook_body(
    event: str, job_id: str, *, result: Mapping[str, Any] | None = None, error: Any = None
) -> bytes:
    """The delivered JSON: ``{"event", "job_id", "result"}`` or ``{"event", "job_id", "error"}``."""
    payload: dict[str, Any] = {"event": event, "job_id": job_id}
    if event == SUCCEEDED:
        payload["result"] = result
    else:
        payload["error"] = error
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8")


def allowed_host_patterns(setting: str) -> tuple[str, ...]:
    """``webhook_allowed_hosts`` as lower-case patterns (empty: no allow-list)."""
    return tuple(p.strip().lower() for p in setting.split(",") if p.strip())


def host_listed(host: str, patterns: Iterable[str]) -> bool:
    """Whether ``host`` is one of ``patterns`` (exact, or ``*.example.com`` for subdomains)."""
    host = host.lower().rstrip(".")
    for pattern in patterns:
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]):
                return True
        elif host == pattern:
            return True
    return False


def is_public_address(address: str) -> bool:
    """Whether an IP address is globally routable (no loopback, private, link-local, ...)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_callback_url(url: object, allowed: Iterable[str]) -> str:
    """``url`` if modq may POST to it, else InvalidContent (field ``callback_url``).

    http(s) only, with a host and no user:password. With an allow-list, the host must be on it;
    without one, a host given as an IP address must be public (names are resolved and checked
    at delivery time, on the worker)."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_CHARS:
        raise InvalidContent(
            f"callback_url must be a URL of at most {MAX_URL_CHARS} characters",
            field="callback_url",
        )
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError as exc:
        raise InvalidContent(f"callback_url is not a URL: {exc}", field="callback_url") from exc
    if parts.scheme not in ("http", "https"):
        raise InvalidContent("callback_url must be http or https", field="callback_url")
    if not host:
        raise InvalidContent("callback_url has no host", field="callback_url")
    if parts.username is not None or parts.password is not None:
        raise InvalidContent("callback_url may not carry credentials", field="callback_url")
    patterns = tuple(allowed)
    if patterns:
        if not host_listed(host, patterns):
            raise InvalidContent(
                "callback_url's host is not on MODQ_WEBHOOK_ALLOWED_HOSTS", field="callback_url"
            )
        return url
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        if host.lower().rstrip(".") == "localhost" or host.lower().endswith(".localhost"):
            raise InvalidContent(
                "callback_url may not point at this host", field="callback_url"
            ) from None
        return url
    if not is_public_address(str(literal)):
        raise InvalidContent(
            "callback_url may not point at a private, loopback or link-local address",
            field="callback_url",
        )
    return url
