"""kombu's Redis transport with an atomic fetch: no moment at which a killed worker loses a job.

Stock kombu BRPOPs a message off its queue and only later, in a second round trip, records it
in the ``unacked`` hash that the visibility-timeout sweep restores from. A worker killed in
between (SIGKILL, OOM, a lost host) loses that message, and the gap is not short: a BRPOP reply
that arrives while the worker is at its prefetch limit waits, popped, in the socket buffer
until a slot frees (kombu#305, celery#4354; seen here as one job in 120 gone after a SIGKILL).

Here a consumer fetches with ``fetch.lua`` (loaded once, called by its SHA): one call pops the
first message in drain order (queue-major: urgent's priority steps, then normal's, then
bulk's) and records it in ``unacked`` and its index, so a message is always in a queue list or
in ``unacked``. Lua cannot block, so when every list is empty the consumer blocks instead on
the queues' doorbell lists: modq's producers push a token there beside each message, and a
token sends the consumer back to the script. A token is only a wake-up call: a lost or stale
one costs a round trip, never a message.

A message that rang no bell (a stock Celery producer, a restore) is found by the idle look: in
a worker's event loop, every ``LOOK_INTERVAL_S`` a consumer blocked on its doorbells runs
``look.lua`` on another connection, which rings the bell of a queue that holds a message, and
the consumer wakes at once. (A short BRPOP timeout cannot do this: Redis expires blocked
commands on its ``hz`` clock, every 100 ms by default.) Outside an event loop (a plain
``drain_events``) the doorbell BRPOP times out after the look interval instead.

No-ack consumers (Celery's control replies) have nothing to lose: their lists are popped
without an ``unacked`` entry and blocked on directly, and control replies ring no doorbell.

No item stops a worker. ``fetch.lua`` decodes nothing: it records every item it pops in
``unacked`` under a tag of its own (``modq-<n>``), whatever the item's bytes, so Python's decoder
alone says what is a message (Redis's cjson and Python's json disagree on control bytes, ``nan``,
lone surrogates and nesting depth; an item one accepted and the other refused was once left in
``unacked`` for good, and ended every worker that swept it). An item over the worker's
``MODQ_MAX_MESSAGE_BYTES`` comes back as its head and its size only, never decoded. Every
``unacked`` entry can be removed (by that tag) and restored (its bytes go back to the list they
came from, with no decoder on the way) whatever it holds (modq/broker/unacked.py).

What happens to an item Python cannot take depends on who consumes it:

- **A modq worker's task channel** (the ``PoisonGuardStep`` bootstep of
  ``tasks/dead_letters.py`` calls ``guard_poison``, modq/broker/poison.py): any failure on the
  way to the consumer (too large, not JSON, nested too deep, kombu's ``Message`` refusing it,
  Celery's handling of it: any exception but a connection error) dead-letters the item, byte
  for byte, into the Redis it came from (or ``MODQ_DEAD_LETTERS_URL``), and takes it out of
  ``unacked``. If the store cannot take it, it stays in ``unacked`` and comes back after the
  visibility timeout.
- **Everyone else** (a plain kombu consumer on this transport, Celery's control replies): as
  stock kombu, the exception is raised from ``drain_events`` and the message is kept (in
  ``unacked``; a message its callback failed on is restored when the channel closes).

Connection errors always propagate (the consumer reconnects; the message comes back after the
visibility timeout). See docs/dead-letters.md.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from pathlib import Path
from time import monotonic, time
from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

from modq.broker.poison import FetchedMessage, PoisonGuarding
from modq.broker.unacked import PARKED_KEY as PARKED_KEY  # where it always was
from modq.broker.unacked import Restoring
from modq.contract import QUEUES

log = logging.getLogger(__name__)

DOORBELL_PREFIX = "_modq.doorbell."
DOORBELL_TOKENS = 64  # enough to wake every consumer of a queue; older tokens are trimmed
# How often a consumer blocked on its doorbells looks for messages that rang no bell: the
# most such a message waits on an idle worker. Each look is one round trip (look.lua, a few
# LLENs). Transport option ``look_interval`` (seconds) overrides it.
LOOK_INTERVAL_S = 0.01
FETCH_COUNTER_KEY = "_modq.fetched"  # fetch.lua's tags: modq-<INCR of this>
HEAD_BYTES = 8_192  # of an item over the size limit: its head and tail come back, to park it
FOLD_INTERVAL_S = 10.0  # how often a guarded channel folds the parked list (kombu's sweep's)
CONTROL_SUFFIX = ".pidbox"  # Celery's control queues (``<id>.reply.celery.pidbox``): no bell


class Script:
    """A Lua file of this package, called by its SHA (what SCRIPT LOAD answers)."""

    def __init__(self, name: str) -> None:
        self.source = (Path(__file__).parent / name).read_text()
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()


FETCH = Script("fetch.lua")
LOOK = Script("look.lua")


def doorbell_key(queue: str) -> str:
    """The list a producer pushes a token onto when it puts a message on ``queue``."""
    return f"{DOORBELL_PREFIX}{queue}"


def drain_order(queues: Iterable[str]) -> list[str]:
    """``queues`` with modq's urgent, normal, bulk first, in that order, whatever order they
    were consumed (or re-added by ``add_consumer``) in; other queues after, as they came."""
    rank = {name: index for index, name in enumerate(QUEUES)}
    return sorted(dict.fromkeys(queues), key=lambda name: rank.get(name, len(rank)))


def rings_doorbell(queue: str) -> bool:
    """Whether a message put on ``queue`` pushes a wake-up token: not for Celery's control
    replies, whose consumer blocks on the reply list itself (and whose names are per process:
    a token list per caller would outlive it, with no expiry)."""
    return not queue.endswith(CONTROL_SUFFIX)


class AtomicQoS(kombu_redis.QoS):
    """Records in ``unacked`` only what was not fetched by ``fetch.lua`` (which did it), and
    restores an entry without decoding it (``Channel.restore_entry``)."""

    channel: Channel

    def append(self, message: Any, delivery_tag: str) -> None:
        if self.channel.delivering_fetched:
            virtual.QoS.append(self, message, delivery_tag)  # the in-process bookkeeping only
        else:
            super().append(message, delivery_tag)

    def restore_by_tag(self, tag: Any, client: Any = None, leftmost: bool = False) -> None:
        def restore_transaction(pipe: Any) -> None:
            entry = pipe.hget(self.unacked_key, tag)
            pipe.multi()
            self._remove_from_indices(tag, pipe)
            if entry:
                self.channel.restore_entry(entry, pipe, leftmost)

        with self.channel.conn_or_acquire(client) as client:
            client.transaction(restore_transaction, self.unacked_key)


class Channel(PoisonGuarding, Restoring, kombu_redis.Channel):
    """Consumes with ``fetch.lua``, doorbells and idle looks, queues in modq's drain order;
    publishes a message and its token."""

    QoS = AtomicQoS
    qos: AtomicQoS
    Message = FetchedMessage
    from_transport_options = (  # type: ignore[assignment]  # one more than kombu's
        *kombu_redis.Channel.from_transport_options,
        "look_interval",
    )
    look_interval: float = LOOK_INTERVAL_S
    delivering_fetched = False  # True while a fetched message goes to its consumer
    _waiting_on_doorbell = False  # the command in flight is a doorbell BRPOP, not the script
    _scripts_loaded = False  # this channel has sent SCRIPT LOAD (Redis keeps them until restart)
    _blocked_bells: tuple[str, ...] = ()  # the doorbells the BRPOP in flight waits on
    _in_poll: Any  # kombu's: the connection a fetch is in flight on (False/None when none)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._no_ack_queues: set[str] = set()
        self._look_client: Redis | None = None
        super().__init__(*args, **kwargs)

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        # kombu builds a pool from the transport's client, which a collected connection has
        # dropped; Celery's consumer then closes the channel (restoring unacked messages
        # through that pool) ignoring connection errors only: an AttributeError there ended
        # the worker ("Unrecoverable error", seen during a Redis restart)
        if self.connection.client is None:
            raise RedisConnectionError("the broker connection is closed")
        params: dict[str, Any] = super()._connparams(asynchronous=asynchronous)
        return params

    def _prefixed(self, key: str) -> str:
        return f"{self.global_keyprefix}{key}" if self.global_keyprefix else key

    def basic_consume(self, queue: str, no_ack: bool, *args: Any, **kwargs: Any) -> Any:
        if no_ack:
            self._no_ack_queues.add(queue)
        else:
            self._no_ack_queues.discard(queue)
        return super().basic_consume(queue, no_ack, *args, **kwargs)

    def _basic_cancel(self, consumer_tag: str) -> Any:
        queue = self._tag_to_queue.get(consumer_tag)
        result = super()._basic_cancel(consumer_tag)
        if queue is not None and queue not in self._active_queues:
            self._no_ack_queues.discard(queue)
        return result

    def _update_queue_cycle(self) -> None:
        # add_consumer appends a queue to the active ones: urgent must stay first anyway
        self._queue_cycle.update(drain_order(self.active_queues))

    def _consumed(self) -> list[str]:
        return list(self._queue_cycle.consume(len(self.active_queues)))

    def _lists(self, queue: str) -> list[str]:
        return list(dict.fromkeys(self._q_for_pri(queue, pri) for pri in self.priority_steps))

    def _load_scripts(self, client: Any) -> None:
        if not self._scripts_loaded:
            for script in (FETCH, LOOK):
                client.script_load(script.source)
            self._scripts_loaded = True

    # --- fetching ------------------------------------------------------------------------------

    def _brpop_start(self, timeout: float | None = None) -> None:
        queues = self._consumed()
        if not queues:
            return
        acked = [queue for queue in queues if queue not in self._no_ack_queues]
        no_ack_lists = [key for q in queues if q in self._no_ack_queues for key in self._lists(q)]
        if self._waiting_on_doorbell:
            # in an event loop the idle look rings for un-belled messages: block up to the
            # BRPOP timeout (kombu's health check expects a reply by then); else time out
            # after the look interval (rounded up to Redis's hz clock)
            looking = self.connection.looks_when_idle and acked
            wait_s = self.brpop_timeout if looking or not acked else self.look_interval
            if timeout:
                wait_s = min(wait_s, timeout)
            self._blocked_bells = tuple(doorbell_key(queue) for queue in acked)
            keys = [*self._blocked_bells, *no_ack_lists]
            command: list[Any] = ["BRPOP", *map(self._prefixed, keys), wait_s or 0]
        else:
            self._blocked_bells = ()
            self._load_scripts(self.client)
            lists = [(key, q in acked) for q in queues for key in self._lists(q)]  # queue-major
            keys = [self.unacked_key, self.unacked_index_key, FETCH_COUNTER_KEY]
            keys += [key for key, _ in lists]
            flags = "".join("1" if is_acked else "0" for _, is_acked in lists)
            limit = self.poison_guard.max_message_bytes if self.poison_guard else 0
            args = [time(), flags, limit, HEAD_BYTES]
            command = ["EVALSHA", FETCH.sha, len(keys), *map(self._prefixed, keys), *args]
        self._in_poll = self.client.connection
        self._brpop_sent_at = monotonic()  # type: ignore[assignment]  # kombu types it None
        self.client.connection.send_command(*command)

    def _brpop_read(self, **options: Any) -> bool:
        waited = self._waiting_on_doorbell
        try:
            try:
                # both replies are BRPOP-shaped: [key, item, ...] or nil
                reply = self.client.parse_response(self.client.connection, "BRPOP", **options)
            except self.connection_errors:
                self.client.connection.disconnect()  # the next poll reconnects
                raise
            except NoScriptError:  # the server restarted or flushed its scripts
                self._scripts_loaded = False
                raise kombu_redis.Empty() from None
            key = bytes_to_str(reply[0]) if reply else ""
            rang = waited and (not reply or key.startswith(DOORBELL_PREFIX))
            self._waiting_on_doorbell = not waited and not reply
            if rang or not reply:
                raise kombu_redis.Empty()  # a ring or a timeout: fetch next; empty: wait
            # a prefixed client strips global_keyprefix from a BRPOP reply's key
            dest = key.rsplit(self.sep, 1)[0]
            self._queue_cycle.rotate(dest)
            self.delivering_fetched = True  # in unacked already, or a no-ack message
            try:
                self._deliver_fetched(tuple(reply), dest)
            finally:
                self.delivering_fetched = False
            return True
        finally:
            self._in_poll = None
            self._flush_brpop_reauth()

    def look_when_idle(self) -> None:
        """While this channel is blocked on its doorbells, ring the bell of any of its queues
        that holds a message (one that rang none): the blocked BRPOP returns and the fetch
        takes it. One round trip on a pooled connection, not the blocked one."""
        if not (self._waiting_on_doorbell and self._in_poll and self.qos.can_consume()):
            return
        acked = [queue for queue in self._consumed() if queue not in self._no_ack_queues]
        if not acked:
            return
        if self._look_client is None:  # plain: the keys below carry their prefix already
            self._look_client = Redis(connection_pool=self.pool)
        if self._blocked_bells and not {doorbell_key(q) for q in acked} <= set(self._blocked_bells):
            # a queue added (add_consumer) after the BRPOP was sent: its bell would ring
            # unheard until the BRPOP timeout; a token on a bell it hears wakes it to fetch
            self._look_client.lpush(self._prefixed(self._blocked_bells[0]), 1)
            return
        keys = [key for q in acked for key in (doorbell_key(q), *self._lists(q))]
        per_queue = len(self._lists(acked[0]))
        args: list[Any] = [len(keys), *map(self._prefixed, keys), per_queue, DOORBELL_TOKENS]
        try:
            self._look_client.evalsha(LOOK.sha, *args)
        except NoScriptError:
            self._scripts_loaded = False
            self._load_scripts(self._look_client)

    def _put(self, queue: str, message: Any, **kwargs: Any) -> None:
        if not rings_doorbell(queue):
            super()._put(queue, message, **kwargs)
            return
        bell = doorbell_key(queue)
        trim = (self._prefixed(bell), 0, DOORBELL_TOKENS - 1)  # a prefixed client skips LTRIM
        publish_batch = kwargs.get("_publish_batch")
        if publish_batch is not None or (self._expires and queue in self._expires):
            super()._put(queue, message, **kwargs)
            if publish_batch is not None:
                publish_batch.add("lpush", bell, 1)
                publish_batch.add("ltrim", *trim)
            else:
                with self.conn_or_acquire() as client:
                    client.pipeline(transaction=False).lpush(bell, 1).ltrim(*trim).execute()
            return
        key = self._q_for_pri(queue, self._get_message_priority(message, reverse=False))
        with self.conn_or_acquire() as client:
            # one round trip, message first: a consumer woken by the token finds it
            pipe = client.pipeline(transaction=False)
            pipe.lpush(key, dumps(message)).lpush(bell, 1).ltrim(*trim)
            pipe.execute()


class Transport(kombu_redis.Transport):
    """The Redis transport, fetching atomically (``broker_transport`` in celeryconfig)."""

    Channel = Channel
    looks_when_idle = False  # True once an event loop runs the idle looks
    fetched_tag: str | None = None  # the unacked tag of the message a channel is delivering
    cycle: Any  # kombu's MultiChannelPoller: the channels this transport polls
    client: Any  # the kombu Connection this transport serves
    _look_timer: Any = None
    _fold_timer: Any = None

    def register_with_event_loop(self, connection: Any, loop: Any) -> None:
        super().register_with_event_loop(connection, loop)
        if self._look_timer is not None:
            self._look_timer.cancel()  # a reconnect registers again: one timer, not two
        options = self.client.transport_options or {}
        interval_s = float(options.get("look_interval", LOOK_INTERVAL_S))
        self._look_timer = loop.call_repeatedly(interval_s, self._look_when_idle)
        self.looks_when_idle = True
        if self._fold_timer is not None:
            self._fold_timer.cancel()
        fold_s = float(options.get("unacked_restore_interval") or FOLD_INTERVAL_S)
        self._fold_timer = loop.call_repeatedly(fold_s, self._fold_parked)

    def _fold_parked(self) -> None:
        """After the sweeps: a guarded channel dead-letters what they parked."""
        for channel in list(self.cycle._channels):
            if channel.poison_guard is not None:
                channel.fold_parked()

    def _look_when_idle(self) -> None:
        for channel in list(self.cycle._channels):
            try:
                channel.look_when_idle()
            except self.connection_errors:
                return  # the broker is away: the consumer's own poll reconnects and reports
