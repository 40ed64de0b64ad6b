"""kombu's Redis transport with an atomic fetch: no moment at which a killed worker loses a job.

Stock kombu BRPOPs a message off its queue and only later, in a second round trip, records it
in the ``unacked`` hash that the visibility-timeout sweep restores from. A worker killed in
between (SIGKILL, OOM, a lost host) loses that message, and the gap is not short: a BRPOP reply
that arrives while the worker is at its prefetch limit waits, popped, in the socket buffer
until a slot frees (kombu#305, celery#4354; seen here as one job in 120 gone after a SIGKILL).

Here a consumer fetches with ``FETCH_SCRIPT``: one Lua call pops the first message in drain
order and records it in ``unacked`` and its index, so a message is always in a queue list or in
``unacked``. Lua cannot block, so when every list is empty the consumer blocks instead on the
queues' doorbell lists: producers push a token there beside each message, and a token (or the
BRPOP timeout, 1 s) sends the consumer back to the script. A token is only a wake-up call: a
lost or stale one costs a round trip, never a message. Messages put back by a restore ring no
bell and are found within that timeout.
"""

from __future__ import annotations

from time import monotonic, time
from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads

DOORBELL_PREFIX = "_modq.doorbell."
DOORBELL_TOKENS = 64  # enough to wake every consumer of a queue; older tokens are trimmed
PARKED_KEY = "_modq.undecodable"  # items that are not a kombu message: kept, never delivered

# KEYS: unacked hash, unacked index, parked list, then the queue lists in drain order.
# ARGV: the time to index the message under (the visibility timeout counts from it).
# Returns {queue key, message} or false. Redis runs a script alone: no other client sees the
# message in neither place. The stored entry is what kombu's QoS.append writes:
# [message, exchange, routing_key], which its restore paths read back.
FETCH_SCRIPT = """
local function text(value)
  if type(value) == 'string' then return value end
  return ''
end
for i = 4, #KEYS do
  local item = redis.call('RPOP', KEYS[i])
  while item do
    local ok, message = pcall(cjson.decode, item)
    local properties = ok and type(message) == 'table' and message.properties
    local tag = type(properties) == 'table' and properties.delivery_tag
    if type(tag) == 'string' then
      local info = properties.delivery_info
      if type(info) ~= 'table' then info = {} end
      redis.call('ZADD', KEYS[2], ARGV[1], tag)
      redis.call('HSET', KEYS[1], tag, '[' .. item .. ',' .. cjson.encode(text(info.exchange))
        .. ',' .. cjson.encode(text(info.routing_key)) .. ']')
      return {KEYS[i], item}
    end
    redis.call('LPUSH', KEYS[3], item)
    item = redis.call('RPOP', KEYS[i])
  end
end
return false
"""


def doorbell_key(queue: str) -> str:
    """The list a producer pushes a token onto when it puts a message on ``queue``."""
    return f"{DOORBELL_PREFIX}{queue}"


class QoS(kombu_redis.QoS):
    """Records in ``unacked`` only what was not fetched by ``FETCH_SCRIPT`` (which did it)."""

    def append(self, message: Any, delivery_tag: str) -> None:
        if self.channel.delivering_fetched:
            virtual.QoS.append(self, message, delivery_tag)  # the in-process bookkeeping only
        else:
            super().append(message, delivery_tag)


class Channel(kombu_redis.Channel):
    """Consumes with ``FETCH_SCRIPT`` and doorbells; publishes a message and its token."""

    QoS = QoS
    delivering_fetched = False  # True while a fetched message goes to its consumer
    _waiting_on_doorbell = False  # the command in flight is a doorbell BRPOP, not the script
    _in_poll: Any  # kombu's: the connection a fetch is in flight on (False/None when none)

    def _prefixed(self, key: str) -> str:
        return f"{self.global_keyprefix}{key}" if self.global_keyprefix else key

    def _brpop_start(self, timeout: float | None = None) -> None:
        if timeout is None:
            timeout = self.brpop_timeout
        queues = self._queue_cycle.consume(len(self.active_queues))
        if not queues:
            return
        self._in_poll = self.client.connection
        self._brpop_sent_at = monotonic()  # type: ignore[assignment]  # kombu types it None
        if self._waiting_on_doorbell:
            bells = [self._prefixed(doorbell_key(queue)) for queue in queues]
            command: list[Any] = ["BRPOP", *bells, timeout or 0]
        else:
            lists = [self._q_for_pri(queue, pri) for pri in self.priority_steps for queue in queues]
            keys = [self.unacked_key, self.unacked_index_key, PARKED_KEY, *dict.fromkeys(lists)]
            command = ["EVAL", FETCH_SCRIPT, len(keys), *map(self._prefixed, keys), time()]
        self.client.connection.send_command(*command)

    def _brpop_read(self, **options: Any) -> bool:
        rang = self._waiting_on_doorbell
        try:
            try:
                # both replies are BRPOP-shaped: [key, item] or nil
                reply = self.client.parse_response(self.client.connection, "BRPOP", **options)
            except self.connection_errors:
                self.client.connection.disconnect()  # the next poll reconnects
                raise
            self._waiting_on_doorbell = not rang and not reply
            if rang or not reply:
                raise kombu_redis.Empty()  # a ring or a timeout: fetch next; empty: wait
            key, item = reply  # a prefixed client strips global_keyprefix from a BRPOP reply
            dest = bytes_to_str(key).rsplit(self.sep, 1)[0]
            self._queue_cycle.rotate(dest)
            self.delivering_fetched = True
            try:
                self.connection._deliver(loads(bytes_to_str(item)), dest)
            finally:
                self.delivering_fetched = False
            return True
        finally:
            self._in_poll = None
            self._flush_brpop_reauth()

    def _put(self, queue: str, message: Any, **kwargs: Any) -> None:
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
