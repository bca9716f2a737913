-- The downstream said "throttled": no token for this bucket until now + ms.
-- KEYS: 1 the bucket hash. ARGV: ms. Keeps a later `until` already set.
-- Counts the throttle (`throttles`) and stamps it (`throttled_at`, ms), for
-- operators (`baton ratelimit get`, the web view's limits).
-- Returns the bucket's `until` (ms, Redis's clock).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local held = now + tonumber(ARGV[1])
local cur = tonumber(redis.call('HGET', KEYS[1], 'until')) or 0
redis.call('HINCRBY', KEYS[1], 'throttles', 1)
redis.call('HSET', KEYS[1], 'throttled_at', now)
if held > cur then
  redis.call('HSET', KEYS[1], 'until', held)
  return held
end
return cur
