"""The entries of the Redis transport's ``unacked`` hash, read back without trusting them.

``fetch.lua`` writes ``"\\0modq1 <length of the queue key> <queue key><item>"``: the item as it
was popped, byte for byte, and the list it came from. Nothing in it needs a JSON decoder, so an
entry is restorable whatever the item holds (not JSON, ``nan``, a control byte, nested 5,000
deep, 30 MB). kombu's own entries (and those of modq before it: ``fetch.lua`` wrote the same
shape) are JSON ``[message, exchange, routing_key]``; ``split_kombu`` reads the exchange and
routing key off their end and keeps the message's bytes as they are, so an entry whose message
no decoder accepts is restorable too.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from kombu.utils.json import dumps, loads

log = logging.getLogger(__name__)

ENTRY_MARK = b"\0modq1 "
# items waiting to be dead-lettered: left by an older modq, or an unacked entry that names no
# queue; a guarded channel folds them into the dead-letter queue when it starts
PARKED_KEY = "_modq.undecodable"
# a parked item: PARKED_MARK, its reason, a space, then the entry as it was (an item an older
# modq left there has no mark: it was undecodable)
PARKED_MARK = b"\0modq-parked1 "
NO_QUEUE = "no_queue"  # an unacked entry that names no queue it could go back to
BAD_ENTRY = "bad_entry"  # an unacked entry that could not be read back at all
# kombu's entry: [<message>, "<exchange>", "<routing key>"] (", " or "," between)
_KOMBU_ENTRY = re.compile(
    rb'\A\[(?P<message>.*),\s*(?P<exchange>"(?:[^"\\]|\\.)*")\s*,'
    rb'\s*(?P<routing_key>"(?:[^"\\]|\\.)*")\s*\]\Z',
    re.DOTALL,
)


def parked_item(reason: str, entry: bytes) -> bytes:
    """What goes on the parked list for ``entry``: its reason carried with it."""
    return PARKED_MARK + reason.encode("ascii") + b" " + entry


def split_parked(item: bytes) -> tuple[str, bytes]:
    """``(reason, entry)`` of a parked item (``undecodable`` for one an older modq left)."""
    if item.startswith(PARKED_MARK):
        reason, sep, entry = item[len(PARKED_MARK) :].partition(b" ")
        if sep and reason.isascii():
            return reason.decode("ascii"), entry
    return "undecodable", item


def split_entry(entry: bytes) -> tuple[str, bytes] | None:
    """``(queue list key, item)`` of an entry ``fetch.lua`` wrote; None for any other entry."""
    if not entry.startswith(ENTRY_MARK):
        return None
    length, space, rest = entry[len(ENTRY_MARK) :].partition(b" ")
    if not space or not length.isdigit() or int(length) > len(rest):
        return None
    size = int(length)
    return rest[:size].decode("utf-8", "surrogateescape"), rest[size:]


def split_kombu(entry: bytes) -> tuple[bytes, str, str] | None:
    """``(message bytes, exchange, routing key)`` of kombu's JSON entry; None if it is not one."""
    match = _KOMBU_ENTRY.match(entry)
    if match is None:
        return None
    try:
        exchange, routing_key = json.loads(match["exchange"]), json.loads(match["routing_key"])
    except ValueError:
        return None
    return match["message"].strip(), exchange, routing_key


def readable(item: bytes) -> dict[str, Any] | None:
    """``item`` as a kombu message (a JSON object), or None if Python's decoder refuses it in
    any way (not JSON, nested too deep, not an object)."""
    try:
        message = loads(item.decode("utf-8"))
    except Exception:  # RecursionError, ValueError, UnicodeDecodeError, an object hook's error
        return None
    return message if isinstance(message, dict) else None


def redelivered(item: bytes, message: dict[str, Any] | None) -> bytes:
    """``item`` marked redelivered as kombu marks a restored message (``headers`` and
    ``delivery_info``), when it reads as one; else ``item`` unchanged."""
    headers = message.get("headers") if message is not None else None
    if message is None or not isinstance(headers, dict):
        return item
    try:
        headers["redelivered"] = True
        properties = message.get("properties")
        info = properties.get("delivery_info") if isinstance(properties, dict) else None
        if isinstance(info, dict):
            info["redelivered"] = True
        return str(dumps(message)).encode("utf-8", "surrogatepass")
    except Exception:  # it decoded but does not encode back (nested at the limit): as it was
        return item


class Restoring:
    """The restore part of the transport's ``Channel``: an ``unacked`` entry's item back on
    its list, with no decoder on the way (the sweep, a requeue, a closing channel)."""

    # kombu's Redis channel provides these
    qos: Any
    connection_errors: Any
    global_keyprefix: Any
    _lookup: Any
    _q_for_pri: Any
    _get_message_priority: Any

    def _restore(self, message: Any, leftmost: bool = False) -> None:
        self.qos.restore_by_tag(message.delivery_tag, leftmost=leftmost)

    def restore_entry(self, entry: bytes, pipe: Any, leftmost: bool = False) -> None:
        """Queue the commands that put an ``unacked`` entry's item back where it came from
        (marked redelivered when it reads as a message). An entry that names no queue goes to
        the parked list, to be dead-lettered: never an exception, never a loss."""
        push = pipe.lpush if leftmost else pipe.rpush
        reason = NO_QUEUE
        try:
            targets, item = self._restore_targets(entry)
        except Exception as exc:  # any entry at all: parked rather than lost or fatal
            # (kombu counts KeyError among the Redis transport's connection errors)
            if isinstance(exc, self.connection_errors) and not isinstance(exc, KeyError):
                raise
            log.error("modq: cannot read an unacked entry back (%s)", type(exc).__name__)
            targets, item, reason = [], entry, BAD_ENTRY
        if not targets:
            log.error("modq: an unacked entry names no queue: parked to be dead-lettered")
            pipe.lpush(PARKED_KEY, parked_item(reason, entry))
            return
        for target in targets:
            push(target, item)

    def _restore_targets(self, entry: bytes) -> tuple[list[str], bytes]:
        fetched = split_entry(entry)
        if fetched is not None:
            key, item = fetched
            return [self._unprefixed(key)], redelivered(item, readable(item))
        kombu_entry = split_kombu(entry)
        if kombu_entry is None:
            return [], entry
        item, exchange, routing_key = kombu_entry
        message = readable(item)
        priority = self._get_message_priority(message, reverse=False) if message else 0
        queues = self._lookup(exchange, routing_key)
        lists = [self._q_for_pri(queue, priority) for queue in queues]
        return lists, redelivered(item, message)

    def _unprefixed(self, key: str) -> str:
        return key.removeprefix(self.global_keyprefix or "")
