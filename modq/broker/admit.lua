-- Backpressure's atomic check-and-reserve (modq/broker/backpressure.py), called by its SHA.
--
-- KEYS[1]: the queue's reserved-items counter; KEYS[2]: when it last reserved (ms);
-- KEYS[3..]: the queue's lists (one per priority step).
-- ARGV[1]: the items this message costs; ARGV[2]: the queue's bound in items;
-- ARGV[3]: the grace (ms) after the last reservation before an empty queue resets the counter.
-- Returns {1, depth} when admitted (the cost is now reserved), {0, depth} when refused; depth
-- is the items waiting before this message. Redis runs a script alone: two producers never
-- both see the last free places.
local cost = tonumber(ARGV[1])
local bound = tonumber(ARGV[2])
local grace_ms = tonumber(ARGV[3])
local messages = 0
for i = 3, #KEYS do
  messages = messages + redis.call('LLEN', KEYS[i])
end
local reserved = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
if messages == 0 and reserved ~= 0 then
  -- nothing waits: a count left by messages that were never received (purged, parked) is
  -- dropped, once no producer can still be between its reservation and its push
  local at_ms = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
  if now_ms - at_ms >= grace_ms then
    reserved = 0
    redis.call('SET', KEYS[1], 0)
  end
end
local depth = reserved
if depth < messages then depth = messages end  -- every waiting message holds an item at least
if depth + cost > bound then
  return {0, depth}
end
redis.call('SET', KEYS[1], reserved + cost)
redis.call('SET', KEYS[2], now_ms)
return {1, depth}
