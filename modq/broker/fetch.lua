-- The atomic fetch of modq's Redis transport (modq/broker/transport.py), loaded once with
-- SCRIPT LOAD and called by its SHA (EVALSHA).
--
-- It never decodes a message: Python's decoder is the only one, so an item is a message or
-- poison by one rule, on one side (Redis's cjson and Python's json disagree on control bytes,
-- `nan`, lone surrogates, nesting depth), and no item, however big, is parsed inside Redis.
--
-- KEYS: the unacked hash, its index, the fetch counter, then the queue lists in drain order
-- (queue-major: each queue's priority steps in turn, queues urgent, normal, bulk).
-- ARGV[1]: the time to index a message under (the visibility timeout counts from it).
-- ARGV[2]: one character per queue list, '1' where its consumer acknowledges (the item is
-- recorded in unacked), '0' for a no-ack consumer (a control reply: popped like stock kombu).
-- ARGV[3]: the largest item handed back whole, in bytes (0: no limit); ARGV[4]: how many bytes
-- of a bigger item's head and of its tail are handed back (to dead-letter it by its task id).
--
-- Returns {queue key, item} for a no-ack list; {queue key, item, tag} for an acknowledged one:
-- the item is in unacked under `tag`, a key of the script's own (modq-<n>), whatever its bytes;
-- {queue key, head, tag, size, tail} for an item over ARGV[3] bytes (in unacked whole); false
-- when every list is empty. Redis runs a script alone: no other client sees an item in neither
-- place. The unacked entry is "\0modq1 <length of the queue key> <queue key><item>": binary
-- safe, read back by the transport's restore without a JSON decoder (kombu's own entries, JSON
-- [message, exchange, routing_key], are still read too).
local max_bytes = tonumber(ARGV[3])
for i = 4, #KEYS do
  local acked = string.sub(ARGV[2], i - 3, i - 3) ~= '0'
  local item = redis.call('RPOP', KEYS[i])
  if item then
    if not acked then return {KEYS[i], item} end
    local tag = 'modq-' .. redis.call('INCR', KEYS[3])
    redis.call('ZADD', KEYS[2], ARGV[1], tag)
    redis.call('HSET', KEYS[1], tag, '\0modq1 ' .. #KEYS[i] .. ' ' .. KEYS[i] .. item)
    if max_bytes > 0 and #item > max_bytes then
      local part = tonumber(ARGV[4])
      return {KEYS[i], string.sub(item, 1, part), tag, #item, string.sub(item, -part)}
    end
    return {KEYS[i], item, tag}
  end
end
return false
