-- Takes one token from a rate-limit bucket (a token bucket on Redis's clock).
-- KEYS: 1 the bucket hash (rate tokens/s, burst, tokens, ts ms, until ms).
-- ARGV: default rate, default burst: used for fields the hash lacks, so an
-- operator's `HSET <key> rate 10 burst 10` wins from the next take on.
-- Returns {wait, tokens}: wait is 0 when a token was taken (or the key has no
-- limit), else the ms to wait before one will be there (or before `until`,
-- set on throttling); tokens is the whole tokens left after the take (-1:
-- unknown, as when held or unlimited), for metrics.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'rate', 'burst', 'tokens', 'ts', 'until')
local rate = tonumber(b[1]) or tonumber(ARGV[1]) or 0
local burst = tonumber(b[2]) or tonumber(ARGV[2]) or 0
local held = tonumber(b[5]) or 0
if held > now then
  return {held - now, -1}
end
if rate <= 0 then
  return {0, -1}
end
if burst < 1 then
  burst = 1
end
local tokens = tonumber(b[3]) or burst
local ts = tonumber(b[4]) or now
if now > ts then
  tokens = tokens + (now - ts) * rate / 1000
end
if tokens > burst then
  tokens = burst
end
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'rate', rate, 'burst', burst, 'tokens', tokens, 'ts', now)
return {wait, math.floor(tokens)}
