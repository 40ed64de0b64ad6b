-- The idle look of modq's Redis transport (modq/broker/transport.py), loaded once with
-- SCRIPT LOAD and called by its SHA (EVALSHA) every look interval while a consumer is blocked
-- on its doorbells: a message that rang no bell (a stock Celery producer, a restore) gets its
-- queue's bell rung here, so the blocked consumer wakes and fetches it with fetch.lua.
--
-- KEYS: for each queue in drain order, its doorbell list, then its priority lists.
-- ARGV[1]: priority lists per queue. ARGV[2]: tokens a doorbell keeps (older are trimmed).
-- Returns 1 if it rang a bell, else 0. It moves no message.
local per_queue = tonumber(ARGV[1])
local i = 1
while i <= #KEYS do
  for j = 1, per_queue do
    if redis.call('LLEN', KEYS[i + j]) > 0 then
      redis.call('LPUSH', KEYS[i], 1)
      redis.call('LTRIM', KEYS[i], 0, tonumber(ARGV[2]) - 1)
      return 1
    end
  end
  i = i + per_queue + 1
end
return 0
