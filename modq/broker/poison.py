"""What a modq worker's task channel does with an item it cannot deliver: dead-letter it.

``PoisonGuarding`` is a part of the Redis transport's ``Channel`` (modq/broker/transport.py). A
channel is guarded once ``guard_poison`` is called (the ``PoisonGuardStep`` bootstep of
``tasks/dead_letters.py``, on a modq worker's task channel only): then any failure between the
fetch and the consumer (too large, not JSON, nested too deep, kombu's ``Message`` refusing it,
Celery's handling of it: any exception but a connection error) dead-letters the item, byte for
byte, into the Redis it came from (or ``MODQ_DEAD_LETTERS_URL``) and takes it out of
``unacked``. An unguarded channel raises the error from ``drain_events``, as stock kombu does,
and keeps the item. ``FetchedMessage`` is kombu's message acknowledged by the fetch's own tag.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads
from redis import Redis

from modq.broker import dead_letters
from modq.broker.unacked import PARKED_KEY, split_parked
from modq.errors import TooLarge

log = logging.getLogger(__name__)

FOLD_BATCH = 100  # parked items moved to the dead-letter queue when a channel is guarded
# a parked item is claimed (taken off the list, atomically, by one channel of one worker)
# before it is dead-lettered, so two workers never park it twice; a claim its channel never
# released (the worker died) goes back on the list after CLAIM_STALE_S
CLAIMS_KEY = "_modq.undecodable.claims"
CLAIMS_INDEX_KEY = "_modq.undecodable.claims_index"
CLAIMS_COUNTER_KEY = "_modq.undecodable.claims_counter"
CLAIM_STALE_S = 300
_CLAIM = """
local now = redis.call('TIME')
local now_s = tonumber(now[1]) + tonumber(now[2]) / 1e6
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now_s - tonumber(ARGV[2]))) do
  local item = redis.call('HGET', KEYS[2], id)
  if item then redis.call('RPUSH', KEYS[1], item) end
  redis.call('HDEL', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
end
local claimed = {}
for _ = 1, tonumber(ARGV[1]) do
  local item = redis.call('RPOP', KEYS[1])
  if not item then break end
  local id = tostring(redis.call('INCR', KEYS[4]))
  redis.call('HSET', KEYS[2], id, item)
  redis.call('ZADD', KEYS[3], now_s, id)
  claimed[#claimed + 1] = id
  claimed[#claimed + 1] = item
end
return claimed
"""
_RELEASE = """
local item = redis.call('HGET', KEYS[2], ARGV[1])
if item and ARGV[2] == '1' then redis.call('RPUSH', KEYS[1], item) end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 0
"""


@dataclass(frozen=True)
class PoisonGuard:
    """What a guarded channel (a modq worker's task channel) does with an item it cannot
    deliver: dead-letter it. Items over ``max_message_bytes`` are refused undecoded."""

    max_message_bytes: int


class FetchedMessage(virtual.Message):
    """kombu's message, acknowledged by the fetch's own tag (the transport's ``fetched_tag``
    while a channel delivers it: kombu may build it on another channel, to requeue a message
    no consumer took) rather than the one in its properties; ``_raw`` stays the message as it
    came, so what is parked or retried of it is the item the producer sent."""

    def __init__(self, payload: Any, channel: Any = None, **kwargs: Any) -> None:
        tag = getattr(getattr(channel, "connection", None), "fetched_tag", None)
        if tag is None:
            super().__init__(payload, channel=channel, **kwargs)
            return
        tagged = {**payload, "properties": {**payload["properties"], "delivery_tag": tag}}
        super().__init__(tagged, channel=channel, **kwargs)
        self._raw = payload


class PoisonGuarding:
    """The guard's part of the transport's ``Channel``: delivering a fetched item, and
    dead-lettering what cannot be delivered on a guarded channel."""

    poison_guard: PoisonGuard | None = None  # set on a modq worker's task channel only
    _dead_letters: dead_letters.DeadLetters | None = None
    # kombu's Redis channel provides these
    qos: Any
    pool: Any
    connection: Any
    connection_errors: Any
    conn_or_acquire: Any
    _prefixed: Any

    def guard_poison(self, *, max_message_bytes: int) -> None:
        """Dead-letter what this channel cannot deliver, instead of raising it (a modq worker's
        task channel: the ``PoisonGuardStep`` bootstep calls this); fold the parked items in."""
        self.poison_guard = PoisonGuard(max_message_bytes=max_message_bytes)
        self.fold_parked()

    def fold_parked(self) -> None:
        """Dead-letter what waits on the parked list (left by an older modq, or an ``unacked``
        entry a sweep could not put back on a queue): at the start, and after each sweep (the
        transport's timer). Each item is claimed first (taken off the list atomically: no other
        worker parks it too), then parked with the reason it was parked for, then released; if
        the store is away the claimed items go back on the list. Never raises: what is left is
        folded next time."""
        try:
            with self.conn_or_acquire() as client:
                claimed = client.execute_command(
                    "EVAL", _CLAIM, 4, *self._claim_keys(), CLAIMS_COUNTER_KEY, FOLD_BATCH,
                    CLAIM_STALE_S,
                )  # fmt: skip
                pairs = list(zip(claimed[::2], claimed[1::2], strict=True))
                for index, (claim, item) in enumerate(pairs):
                    if not self._dead_letter_parked(item):  # the store is away: all back
                        for left, _ in pairs[index:]:
                            self._release_claim(client, left, put_back=True)
                        return
                    self._release_claim(client, claim, put_back=False)
        except Exception as exc:  # unreleased claims go back after CLAIM_STALE_S
            log.error("modq: cannot fold the parked items yet (%s)", type(exc).__name__)

    def _claim_keys(self) -> list[str]:
        # EVAL's keys are not prefixed by kombu's client: prefixed here, as the fetch's are
        return [self._prefixed(key) for key in (PARKED_KEY, CLAIMS_KEY, CLAIMS_INDEX_KEY)]

    def _release_claim(self, client: Any, claim: bytes, *, put_back: bool) -> None:
        keys = self._claim_keys()
        client.execute_command("EVAL", _RELEASE, 3, *keys, claim, "1" if put_back else "0")

    def _dead_letter_store(self) -> dead_letters.DeadLetters:
        if self._dead_letters is None:
            self._dead_letters = dead_letters.store_for_broker(Redis(connection_pool=self.pool))
        return self._dead_letters

    def _dead_letter_parked(self, item: bytes) -> bool:
        """An item from the parked list, dead-lettered with the reason it was parked for;
        False if the dead-letter store is away (the item goes back on the list)."""
        reason, entry = split_parked(item)
        job = dead_letters.read_raw(entry)
        if reason == "undecodable":
            error = f"undecodable message: {job.problem or 'not a kombu message'}"
        else:  # readable or not, an unacked entry no queue could take back
            error = f"an unacked entry that names no queue to go back to ({reason})"
        letter = dead_letters.poison_entry(entry, queue=None, reason=reason, error=error)
        try:
            dead_letters.park(letter, self._dead_letter_store())
        except Exception as exc:  # kept on the parked list, folded later
            log.error("modq: cannot dead-letter a parked item yet (%s)", type(exc).__name__)
            return False
        return True

    def _deliver_fetched(self, reply: tuple[Any, ...], dest: str) -> None:
        """Hand a fetched item to its consumer. On a guarded channel a poison item (anything
        but a connection error on the way) is dead-lettered instead, and leaves ``unacked``;
        elsewhere the error is raised, as stock kombu raises it, and the item is kept."""
        item, tag = reply[1], (bytes_to_str(reply[2]) if len(reply) > 2 else None)
        guard = self.poison_guard if tag is not None else None
        reason = "undecodable"
        try:
            if len(reply) > 3:
                reason = "too_large"
                raise TooLarge(
                    f"a broker item of {int(reply[3])} bytes, over the "
                    f"{guard.max_message_bytes if guard else 0} of MODQ_MAX_MESSAGE_BYTES"
                )
            payload = loads(bytes_to_str(item))
            reason = "bad_envelope"  # it decodes: from here on what fails is its envelope
            self.connection.fetched_tag = tag  # read by FetchedMessage
            try:
                self.connection._deliver(payload, dest)
            finally:
                self.connection.fetched_tag = None
        except Exception as exc:
            # kombu's Redis transport counts KeyError among its connection errors: an envelope
            # with no "properties" or "body" would pass for a lost connection, and come back
            if isinstance(exc, self.connection_errors) and not isinstance(exc, KeyError):
                raise
            if guard is None or tag is None:
                raise
            if reason == "undecodable" and _plain_json(item):
                reason = "bad_envelope"  # JSON that kombu's object hooks refuse (a bad datetime)
            self._dead_letter_fetched(reply, dest, tag, reason, exc)

    def _dead_letter_fetched(
        self, reply: tuple[Any, ...], dest: str, tag: str, reason: str, exc: Exception
    ) -> None:
        self.qos._delivered.pop(tag, None)  # no longer counts against the prefetch
        try:
            error = dead_letters.describe(exc)
            if reason == "too_large":
                entry = dead_letters.oversize_entry(
                    reply[1], reply[4], size=int(reply[3]), queue=dest, error=error
                )
            else:
                entry = dead_letters.poison_entry(reply[1], queue=dest, reason=reason, error=error)
            dead_letters.park(entry, self._dead_letter_store())
        except Exception as store_exc:
            # left in unacked: it comes back after the visibility timeout and is parked then
            log.error(
                "modq: cannot dead-letter a poison message yet (%s)", type(store_exc).__name__
            )
            return
        self.qos._remove_from_indices(tag).execute()


def _plain_json(item: bytes) -> bool:
    """Whether ``item`` is JSON to Python's plain decoder (no object hooks)."""
    try:
        json.loads(item)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False
    return True
