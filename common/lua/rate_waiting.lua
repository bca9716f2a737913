-- One worker's tasks waiting for a token of one rate key, shared so that
-- operators see every worker's (`baton ratelimit get`, the web view).
-- KEYS: 1 the key's waiting hash (<prefix>:rlw:<key>): worker -> "n:expiry".
-- ARGV: worker, n (0 removes the worker's field), ttl ms. A field lives ttl
-- past its last write, so a dead worker's count fades; expired fields are
-- dropped here, and the hash expires with its last live field.
-- Returns the waiters of live workers, summed.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
if tonumber(ARGV[2]) > 0 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. (now + ttl))
else
  redis.call('HDEL', KEYS[1], ARGV[1])
end
local all = redis.call('HGETALL', KEYS[1])
local sum = 0
for i = 1, #all, 2 do
  local n, expiry = string.match(all[i + 1], '^(%d+):(%d+)$')
  if not expiry or tonumber(expiry) <= now then
    redis.call('HDEL', KEYS[1], all[i])
  else
    sum = sum + tonumber(n)
  end
end
if sum > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return sum
