"""A broker URL checked before a producer uses it: a malformed one is ``BrokerUnavailable``
with the URL's password masked, never kombu's ``ValueError``/``KeyError`` (or the password)."""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit

from kombu.transport import TRANSPORT_ALIASES

from modq.errors import BrokerUnavailable
from modq.redact_urls import mask_url, mask_urls

MODQ_SCHEMES = frozenset({"redis+socket", "socket"})  # kombu's own, spelled for redis sockets


@lru_cache(maxsize=32)
def broker_url_problem(broker_url: str) -> str | None:
    """What is wrong with ``broker_url`` (a ``;``-separated failover list is checked whole),
    or None."""
    for url in (u.strip() for u in broker_url.split(";")):
        scheme, sep, _ = url.partition("://")
        if not sep or not scheme:
            return "it has no scheme:// (redis://host:6379/0, amqp://host:5672//)"
        if scheme not in TRANSPORT_ALIASES and scheme not in MODQ_SCHEMES:
            return f"unknown scheme {scheme}://"
        try:
            urlsplit(url).port  # noqa: B018  (parsing it raises on a port that is not a number)
        except ValueError as exc:
            return mask_urls(str(exc))
    return None


def check_broker_url(broker_url: object) -> None:
    """Raise ``BrokerUnavailable`` (password masked) when ``broker_url`` cannot be a broker."""
    url = str(broker_url)
    problem = broker_url_problem(url)
    if problem is not None:
        raise BrokerUnavailable(
            f"the broker URL {mask_url(url)} is malformed: {problem}; nothing was enqueued",
            reason="malformed_broker_url",
        )
