-- Extends a concurrency lease to now + lease ms (Redis's clock).
-- KEYS: 1 the holders sorted set. ARGV: holder, lease ms.
-- Returns 1, or 0 when the lease was lost (it expired: its slot may be
-- someone else's now) and is left alone.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local score = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
if not score or score <= now then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(last[2]) - now) + 1000)
return 1
