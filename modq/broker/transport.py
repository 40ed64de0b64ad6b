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

A poison message never reaches past this transport as an exception (stock kombu lets one end
the worker with ``Unrecoverable error``, and the message, in ``unacked``, then comes back to
kill the next worker): an item the script cannot read as a kombu message (not JSON, no delivery
tag, a lone surrogate escape cjson refuses) waits on the parked list until the transport has
dead-lettered it; a message that fails later (its JSON object hooks, kombu's ``Message`` — bad
base64, an unknown body encoding, ``headers`` that are no dict — or Celery's handling of it) is
dead-lettered and taken out of ``unacked``. Connection errors still propagate (the consumer
reconnects; the message comes back after the visibility timeout). See docs/dead-letters.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from time import monotonic, time
from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

from modq.broker import dead_letters
from modq.contract import QUEUES

log = logging.getLogger(__name__)

DOORBELL_PREFIX = "_modq.doorbell."
DOORBELL_TOKENS = 64  # enough to wake every consumer of a queue; older tokens are trimmed
# How often a consumer blocked on its doorbells looks for messages that rang no bell: the
# most such a message waits on an idle worker. Each look is one round trip (look.lua, a few
# LLENs). Transport option ``look_interval`` (seconds) overrides it.
LOOK_INTERVAL_S = 0.01
# items that are not a kombu message: kept here until dead-lettered, never delivered
PARKED_KEY = "_modq.undecodable"
FOLD_BATCH = 100  # parked items moved to the dead-letter queue when a channel starts fetching
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


class QoS(kombu_redis.QoS):
    """Records in ``unacked`` only what was not fetched by ``fetch.lua`` (which did it)."""

    def append(self, message: Any, delivery_tag: str) -> None:
        if self.channel.delivering_fetched:
            virtual.QoS.append(self, message, delivery_tag)  # the in-process bookkeeping only
        else:
            super().append(message, delivery_tag)


class Channel(kombu_redis.Channel):
    """Consumes with ``fetch.lua``, doorbells and idle looks, queues in modq's drain order;
    publishes a message and its token."""

    QoS = QoS
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
            self._fold_parked(client)

    def _fold_parked(self, client: Any) -> None:
        """Items left on the parked list (by an older modq, or a worker that died before it
        dead-lettered them) go to the dead-letter queue."""
        for item in client.lrange(self._prefixed(PARKED_KEY), 0, FOLD_BATCH - 1):
            self._dead_letter_parked(item, None)

    def _dead_letter_parked(self, item: bytes, queue: str | None) -> None:
        """An item the fetch script could not read as a kombu message: dead-lettered, then
        taken off the parked list (where it stays if the dead-letter store is away)."""
        job = dead_letters.read_raw(item)
        why = job.problem or "JSON that the broker's decoder refuses (a lone surrogate escape?)"
        if job.problem is None and not (job.task_id or job.task):
            why = "not a kombu message (no delivery tag)"
        entry = dead_letters.poison_entry(
            item, queue=queue, reason="undecodable", error=f"undecodable message: {why}"
        )
        try:
            dead_letters.park(entry)
        except Exception as exc:  # kept on the parked list, folded later
            log.error(
                "modq: cannot dead-letter an undecodable message yet (%s)", type(exc).__name__
            )
            return
        with self.conn_or_acquire() as client:
            client.lrem(self._prefixed(PARKED_KEY), 1, item)

    def _deliver_or_park(self, item: bytes, dest: str) -> None:
        """Hand a fetched item to its consumer; a poison message (anything but a connection
        error on the way) is dead-lettered instead, and leaves ``unacked``."""
        try:
            self.connection._deliver(loads(bytes_to_str(item)), dest)
        except self.connection_errors:
            raise
        except Exception as exc:  # any poison: park it, never crash
            self._dead_letter_fetched(item, dest, exc)

    def _dead_letter_fetched(self, item: bytes, dest: str, exc: Exception) -> None:
        tag = _delivery_tag(item)
        entry = dead_letters.poison_entry(
            item, queue=dest, reason="bad_envelope", error=dead_letters.describe(exc)
        )
        try:
            dead_letters.park(entry)
            parked = True
        except Exception as store_exc:
            # left in unacked: it comes back after the visibility timeout and is parked then
            log.error(
                "modq: cannot dead-letter a poison message yet (%s)", type(store_exc).__name__
            )
            parked = False
        if tag is not None:
            self.qos._delivered.pop(tag, None)  # no longer counts against the prefetch
            if parked and dest not in self._no_ack_queues:
                self.qos._remove_from_indices(tag).execute()

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
            keys = [self.unacked_key, self.unacked_index_key, PARKED_KEY, *(k for k, _ in lists)]
            flags = "".join("1" if is_acked else "0" for _, is_acked in lists)
            command = ["EVALSHA", FETCH.sha, len(keys), *map(self._prefixed, keys), time(), flags]
        self._in_poll = self.client.connection
        self._brpop_sent_at = monotonic()  # type: ignore[assignment]  # kombu types it None
        self.client.connection.send_command(*command)

    def _brpop_read(self, **options: Any) -> bool:
        waited = self._waiting_on_doorbell
        try:
            try:
                # both replies are BRPOP-shaped: [key, item] or nil
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
            item = reply[1]  # a prefixed client strips global_keyprefix from a BRPOP reply
            if key in (PARKED_KEY, self._prefixed(PARKED_KEY)) and len(reply) > 2:
                source = bytes_to_str(reply[2]).removeprefix(self.global_keyprefix or "")
                self._dead_letter_parked(item, source.rsplit(self.sep, 1)[0])
                raise kombu_redis.Empty()  # fetch the next one
            dest = key.rsplit(self.sep, 1)[0]
            self._queue_cycle.rotate(dest)
            self.delivering_fetched = True  # in unacked already, or a no-ack message
            try:
                self._deliver_or_park(item, dest)
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


def _delivery_tag(item: bytes) -> str | None:
    """The delivery tag the fetch script read from ``item`` (it reads JSON alike), if any."""
    try:
        properties = json.loads(item).get("properties")
        tag = properties.get("delivery_tag")
    except (ValueError, AttributeError, UnicodeDecodeError):
        return None
    return tag if isinstance(tag, str) else None


class Transport(kombu_redis.Transport):
    """The Redis transport, fetching atomically (``broker_transport`` in celeryconfig)."""

    Channel = Channel
    looks_when_idle = False  # True once an event loop runs the idle looks
    cycle: Any  # kombu's MultiChannelPoller: the channels this transport polls
    client: Any  # the kombu Connection this transport serves
    _look_timer: Any = None

    def register_with_event_loop(self, connection: Any, loop: Any) -> None:
        super().register_with_event_loop(connection, loop)
        if self._look_timer is not None:
            self._look_timer.cancel()  # a reconnect registers again: one timer, not two
        options = self.client.transport_options or {}
        interval_s = float(options.get("look_interval", LOOK_INTERVAL_S))
        self._look_timer = loop.call_repeatedly(interval_s, self._look_when_idle)
        self.looks_when_idle = True

    def _look_when_idle(self) -> None:
        for channel in list(self.cycle._channels):
            try:
                channel.look_when_idle()
            except self.connection_errors:
                return  # the broker is away: the consumer's own poll reconnects and reports
