"""URLs without their secrets: what modq prints, logs or puts in an error message.

``mask_url`` replaces a URL's password with ``***`` (``redis://:***@host:6379/0``);
``mask_urls`` does it to every URL inside a text (an exception message, a log line), and
``UrlMaskingFilter`` to every log record a handler emits. Layer 0: nothing internal.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl, urlencode

MASK = "***"
# scheme://user:password@  (user may be empty: redis://:password@host)
# (greedy to the token's last "@": a password may hold an unencoded "@"; masking too much beats
# leaking the rest)
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^\s/@:'\"]*:)[^\s'\"]*@")
# scheme://password@host for schemes that take a bare token (redis://secret@host)
_BARE_TOKEN = re.compile(r"(?P<head>\b(?:redis|rediss|valkey)(?:\+socket)?://)[^\s/@:'\"]+@")
_SECRET_QUERY_KEYS = frozenset({"password", "passwd", "pwd", "token", "secret", "access_token"})
_QUERY_SECRET = re.compile(
    r"(?P<head>[?&](?:" + "|".join(sorted(_SECRET_QUERY_KEYS)) + r")=)[^&\s'\"#]*", re.IGNORECASE
)


def mask_urls(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***`` (and the values of
    ``password=``/``token=`` query parameters)."""
    if "://" not in text and "=" not in text:
        return text
    masked = _USERINFO.sub(lambda m: f"{m['head']}{MASK}@", text)
    masked = _BARE_TOKEN.sub(lambda m: f"{m['head']}{MASK}@", masked)
    return _QUERY_SECRET.sub(lambda m: f"{m['head']}{MASK}", masked)


_ANY_USERINFO = re.compile(r":[^\s'\"]*@")


def mask_url(url: object) -> str:
    """One URL (or anything with a ``str``) with its password shown as ``***``; never raises,
    whatever the URL looks like (one with a broken scheme, ``redis//u:pw@host``, included)."""
    text = str(url)
    masked = mask_urls(text)
    if masked == text and "@" in text:  # no scheme:// to anchor on: whatever sits in :…@
        masked = _ANY_USERINFO.sub(f":{MASK}@", text, count=1)
    return masked


def mask_query(query: str) -> str:
    """A URL query string with its secret parameters masked."""
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, MASK if k.lower() in _SECRET_QUERY_KEYS else v) for k, v in pairs])


class UrlMaskingFilter(logging.Filter):
    """Masks URL passwords in every record it sees (its message and arguments, formatted)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record that cannot format is left to the handler to report
            return True
        masked = mask_urls(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = mask_urls(text)
        return True


def install_log_masking(logger: logging.Logger | None = None) -> None:
    """Add ``UrlMaskingFilter`` to every handler of ``logger`` (the root logger by default)
    that lacks one: a safety net under the masked messages themselves."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, UrlMaskingFilter) for f in handler.filters):
            handler.addFilter(UrlMaskingFilter())
