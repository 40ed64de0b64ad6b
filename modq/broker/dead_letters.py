"""The dead-letter queue: messages a worker could not decode or validate (poison) and jobs that
ran out of retries, parked with the reason instead of crashing a worker or vanishing.

Kept in Redis: ``MODQ_DEAD_LETTERS_URL`` if set, else the broker the message came from when it
is Redis (the transport parks through its own connection), else ``MODQ_REDIS_URL`` (a RabbitMQ
broker). Two keys: a hash ``modq:dlq:entries`` (id -> entry as JSON) and a sorted set
``modq:dlq:index`` (id -> parked time), which orders ``list`` and sizes the ``modq_dead_letters``
gauge. It is bounded: an entry keeps at most ``MODQ_DEAD_LETTER_MAX_BYTES`` of its message, and
the store the newest ``MODQ_DEAD_LETTER_MAX_ENTRIES`` entries younger than
``MODQ_DEAD_LETTER_MAX_AGE_S``, so a flood of poison cannot grow Redis without limit.
docs/dead-letters.md says why Redis and not SQL.

An entry keeps the original message as it came (poison: the raw broker item; a job out of
retries: its task name and arguments), so ``modq dlq retry`` can send it again through the
producer. Nothing here logs a message's content.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from redis import Redis

from modq.broker.raw_items import ERROR_CHARS as ERROR_CHARS  # kept importable from here
from modq.broker.raw_items import RawJob as RawJob
from modq.broker.raw_items import clip, encode_raw, known_fields, read_raw
from modq.broker.raw_items import describe as describe
from modq.errors import UnknownJob

log = logging.getLogger(__name__)

ENTRIES_KEY = "modq:dlq:entries"
INDEX_KEY = "modq:dlq:index"
FIRST_ERROR_PREFIX = "modq:dlq:first:"  # a job's first retryable error, until it ends
FIRST_ERROR_TTL_S = 7 * 24 * 3600
# the defaults of the settings (modq/settings.py) that bound the store
MAX_ENTRY_BYTES = 262_144
MAX_ENTRIES = 10_000
MAX_AGE_S = 14 * 24 * 3600

POISON = "poison"  # a message no worker could decode or validate
EXHAUSTED = "exhausted"  # a job whose retryable error outlasted its retries


@dataclass
class DeadLetter:
    """One parked message: why, how often it was tried, and the message itself."""

    kind: str  # POISON or EXHAUSTED
    reason: str  # a stable code: undecodable, bad_envelope, bad_arguments, storage_unavailable…
    error: str  # the last error, as text (no content)
    queue: str | None = None
    task: str | None = None  # the task name, when the message names one
    task_id: str | None = None
    attempts: int = 1
    first_error: str = ""
    first_at_s: float = 0.0
    last_at_s: float = 0.0
    message: str = ""  # the original message (see ``message_encoding``)
    message_encoding: str = "utf-8"  # or "base64" for bytes that are not UTF-8
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    parked_at_s: float = field(default_factory=time.time)
    retry_error: str | None = None  # why the last `modq dlq retry` of it failed
    message_bytes: int = 0  # the original message's size, when ``message`` keeps only its head

    def __post_init__(self) -> None:
        self.error = clip(self.error)
        self.first_error = clip(self.first_error or self.error)
        self.first_at_s = self.first_at_s or self.parked_at_s
        self.last_at_s = self.last_at_s or self.parked_at_s

    def raw(self) -> bytes:
        """The original message as bytes."""
        if self.message_encoding == "base64":
            return base64.b64decode(self.message)
        return self.message.encode("utf-8", "surrogatepass")

    @property
    def truncated(self) -> bool:
        return self.message_bytes > 0

    def capped(self, max_bytes: int) -> DeadLetter:
        """This entry with at most ``max_bytes`` of its message (the head; ``message_bytes``
        keeps the original size)."""
        raw = self.raw()
        if len(raw) <= max_bytes:
            return self
        message, encoding = encode_raw(raw[:max_bytes])
        size = self.message_bytes or len(raw)
        return replace(self, message=message, message_encoding=encoding, message_bytes=size)

    def summary(self) -> dict[str, Any]:
        """Everything but the message: what ``modq dlq list`` shows."""
        shown = asdict(self)
        shown.pop("message")
        shown.pop("message_encoding")
        return shown

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> DeadLetter:
        fields = json.loads(text)
        known = {name for name in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in fields.items() if k in known})


def poison_entry(item: bytes | str, *, queue: str | None, reason: str, error: str) -> DeadLetter:
    """The entry for a raw broker item no worker could take (``error``: why, no content)."""
    job = read_raw(item)
    message, encoding = encode_raw(item)
    return DeadLetter(
        kind=POISON,
        reason=reason,
        error=error,
        queue=queue,
        task=job.task,
        task_id=job.task_id,
        message=message,
        message_encoding=encoding,
    )


def oversize_entry(
    head: bytes, tail: bytes, *, size: int, queue: str | None, error: str
) -> DeadLetter:
    """The entry for a broker item too large to decode: its ``head`` kept (``message_bytes``
    says how big it was), its task and id read off its ``tail`` where they can be."""
    found = known_fields(tail)
    message, encoding = encode_raw(head)
    return DeadLetter(
        kind=POISON,
        reason="too_large",
        error=error,
        queue=queue,
        task=found["task"],
        task_id=found["id"] or found["correlation_id"],
        message=message,
        message_encoding=encoding,
        message_bytes=size,
    )


class DeadLetters:
    """The dead-letter store on one Redis, bounded: at most ``max_entry_bytes`` of a message
    per entry, the newest ``max_entries`` entries, none older than ``max_age_s``."""

    def __init__(
        self,
        client: Redis,
        *,
        max_entry_bytes: int = MAX_ENTRY_BYTES,
        max_entries: int = MAX_ENTRIES,
        max_age_s: float = MAX_AGE_S,
    ) -> None:
        self.client = client
        self.max_entry_bytes = max_entry_bytes
        self.max_entries = max_entries
        self.max_age_s = max_age_s

    def park(self, entry: DeadLetter) -> str:
        """Store ``entry`` (its message cut to ``max_entry_bytes``), then drop what is past the
        store's bounds; returns its id."""
        entry = entry.capped(self.max_entry_bytes)
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(ENTRIES_KEY, entry.id, entry.to_json())
        pipe.zadd(INDEX_KEY, {entry.id: entry.parked_at_s})
        pipe.execute()
        try:
            self.trim()
        except Exception as exc:  # parked all the same: the next park trims
            log.warning("modq: cannot trim the dead-letter queue (%s)", type(exc).__name__)
        return entry.id

    def trim(self) -> int:
        """Drop entries older than ``max_age_s`` and the oldest beyond ``max_entries``;
        returns how many went (logged)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.zrangebyscore(INDEX_KEY, "-inf", f"({time.time() - self.max_age_s}")
        pipe.zrange(INDEX_KEY, 0, -(self.max_entries + 1))
        expired, overflow = pipe.execute()
        dropped = set(expired) | set(overflow)
        if not dropped:
            return 0
        pipe = self.client.pipeline(transaction=True)
        pipe.hdel(ENTRIES_KEY, *dropped)
        pipe.zrem(INDEX_KEY, *dropped)
        pipe.execute()
        log.warning(
            "modq: the dead-letter queue dropped %d entries (%d past %d s, %d past %d entries)",
            len(dropped),
            len(expired),
            self.max_age_s,
            len(overflow),
            self.max_entries,
        )
        return len(dropped)

    def size(self) -> int:
        return int(self.client.zcard(INDEX_KEY))

    def ids(self, *, limit: int | None = None) -> list[str]:
        """Entry ids, oldest first."""
        end = -1 if limit is None else limit - 1
        found: list[Any] = list(self.client.zrange(INDEX_KEY, 0, end))
        return [_str(i) for i in found]

    def entries(self, *, limit: int | None = None) -> Iterator[DeadLetter]:
        """Entries, oldest first."""
        ids = self.ids(limit=limit)
        for text in self.client.hmget(ENTRIES_KEY, ids) if ids else []:
            if text is not None:
                yield DeadLetter.from_json(text)

    def get(self, entry_id: str) -> DeadLetter:
        """One entry; ``UnknownJob`` if there is none with that id."""
        text = self.client.hget(ENTRIES_KEY, entry_id)
        if text is None:
            raise UnknownJob(f"no dead letter with id {entry_id!r}")
        return DeadLetter.from_json(text)

    def update(self, entry: DeadLetter) -> None:
        self.client.hset(ENTRIES_KEY, entry.id, entry.capped(self.max_entry_bytes).to_json())

    def remove(self, entry_id: str) -> bool:
        pipe = self.client.pipeline(transaction=True)
        pipe.hdel(ENTRIES_KEY, entry_id)
        pipe.zrem(INDEX_KEY, entry_id)
        removed, _ = pipe.execute()
        return bool(removed)

    def purge(self) -> int:
        """Remove every entry; returns how many there were."""
        pipe = self.client.pipeline(transaction=True)
        pipe.zcard(INDEX_KEY)
        pipe.delete(ENTRIES_KEY, INDEX_KEY)
        count, _ = pipe.execute()
        return int(count)

    def note_attempt(self, task_id: str, error: str) -> None:
        """Remember a job's first retryable error (kept only if it is the first)."""
        memo = json.dumps({"error": clip(error), "at_s": time.time()})
        self.client.set(FIRST_ERROR_PREFIX + task_id, memo, nx=True, ex=FIRST_ERROR_TTL_S)

    def first_attempt(self, task_id: str) -> tuple[str, float] | None:
        """``(error, at_s)`` of a job's first retryable error, and forgets it."""
        pipe = self.client.pipeline(transaction=True)
        pipe.get(FIRST_ERROR_PREFIX + task_id)
        pipe.delete(FIRST_ERROR_PREFIX + task_id)
        text, _ = pipe.execute()
        if text is None:
            return None
        memo = json.loads(text)
        return str(memo["error"]), float(memo["at_s"])


def _str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


_stores: dict[str, DeadLetters] = {}
_lock = threading.Lock()


def default_url() -> str:
    """Where entries go by default: ``MODQ_DEAD_LETTERS_URL``, else a Redis broker (where the
    transport parks what it fetched), else ``MODQ_REDIS_URL``."""
    from modq.settings import get_settings

    settings = get_settings()
    broker = settings.effective_broker_url
    if settings.dead_letters_url:
        return settings.dead_letters_url
    return broker if broker.partition("://")[0] in ("redis", "rediss") else settings.redis_url


def _bounds() -> dict[str, Any]:
    from modq.settings import get_settings

    settings = get_settings()
    return {
        "max_entry_bytes": settings.dead_letter_max_bytes,
        "max_entries": settings.dead_letter_max_entries,
        "max_age_s": settings.dead_letter_max_age_s,
    }


def get_dead_letters(url: str | None = None) -> DeadLetters:
    """The store at ``url`` (default: ``default_url()``), one per URL, bounded as the
    settings say."""
    url = url or default_url()
    with _lock:
        store = _stores.get(url)
        if store is None:
            client = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
            store = _stores[url] = DeadLetters(client, **_bounds())
        return store


def store_for_broker(client: Redis) -> DeadLetters:
    """The store for what a Redis broker's transport parks: ``MODQ_DEAD_LETTERS_URL`` if set,
    else that broker itself (``client``, a plain client on the transport's own pool), so an
    item is dead-lettered into the Redis it came from, whatever ``MODQ_REDIS_URL`` says."""
    from modq.settings import get_settings

    if get_settings().dead_letters_url:
        return get_dead_letters()
    return DeadLetters(client, **_bounds())


# --- what a worker does besides storing: log, store a FAILURE result (tasks/dead_letters) ---

Listener = Callable[[DeadLetter], None]
_listeners: list[Listener] = []


def add_listener(listener: Listener) -> None:
    """Call ``listener`` with every entry this process parks (once per listener)."""
    if listener not in _listeners:
        _listeners.append(listener)


def park(entry: DeadLetter, store: DeadLetters | None = None) -> str:
    """Park ``entry``, log it (no content) and tell the listeners; returns its id. Raises
    what the store raises: a message that could not be parked must stay where it was."""
    entry_id = (store or get_dead_letters()).park(entry)
    log.error(
        "modq: dead-lettered %s message %s (reason %s, task %s, id %s, queue %s, "
        "attempts %d): %s",  # the error's type only: a message may echo its input
        entry.kind,
        entry.id,
        entry.reason,
        entry.task,
        entry.task_id,
        entry.queue,
        entry.attempts,
        entry.error.split(":", 1)[0],
    )
    for listener in list(_listeners):
        try:
            listener(entry)
        except Exception:  # a listener must never turn a parked message into a crash
            log.exception("modq: dead-letter listener %r failed", listener)
    return entry_id
