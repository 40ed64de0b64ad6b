-- The atomic fetch of modq's Redis transport (modq/broker/transport.py), loaded once with
-- SCRIPT LOAD and called by its SHA (EVALSHA).
--
-- KEYS: the unacked hash, its index, the parked list, then the queue lists in drain order
-- (queue-major: each queue's priority steps in turn, queues urgent, normal, bulk).
-- ARGV[1]: the time to index a message under (the visibility timeout counts from it).
-- ARGV[2]: one character per queue list, '1' where its consumer acknowledges (the message is
-- recorded in unacked), '0' for a no-ack consumer (a control reply: popped like stock kombu).
-- Returns {queue key, message}, {parked list key, item, queue key} for an item that is not a
-- kombu message (kept on the parked list until the transport has dead-lettered it), or false.
-- Redis runs a script alone: no other client sees a message in neither place. The stored
-- entry is what kombu's QoS.append writes: [message, exchange, routing_key], which its
-- restore paths read back.
local function text(value)
  if type(value) == 'string' then return value end
  return ''
end
for i = 4, #KEYS do
  local acked = string.sub(ARGV[2], i - 3, i - 3) ~= '0'
  local item = redis.call('RPOP', KEYS[i])
  if item then
    if not acked then return {KEYS[i], item} end
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
    return {KEYS[3], item, KEYS[i]}
  end
end
return false
