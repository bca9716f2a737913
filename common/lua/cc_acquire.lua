-- Takes a lease on a concurrency-limit key (Redis's clock), if a slot is free.
-- KEYS: 1 the limit hash (field `limit`), 2 the holders sorted set (member:
-- holder, score: lease expiry in ms).
-- ARGV: default limit (used to create the hash when it has no limit, so an
-- operator's `HSET <key> limit 5` wins from the next acquire on), holder,
-- lease ms.
-- Returns 0 when the holder has the lease (taken now, or already held: an
-- acquire repeated after a lost reply must not take a second slot), -1 when
-- the key has no limit (no lease taken), else the ms until the earliest lease
-- expires (a release may free a slot sooner).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[3])
local limit = tonumber(redis.call('HGET', KEYS[1], 'limit'))
if not limit then
  limit = tonumber(ARGV[1]) or 0
  if limit > 0 then
    redis.call('HSET', KEYS[1], 'limit', limit)
  end
end
if limit <= 0 then
  return -1
end
-- leases of dead workers end here: nobody renewed them
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local held = redis.call('ZSCORE', KEYS[2], ARGV[2])
if not held and redis.call('ZCARD', KEYS[2]) >= limit then
  local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  local wait = math.ceil(tonumber(first[2]) - now)
  if wait < 1 then
    wait = 1
  end
  return wait
end
redis.call('ZADD', KEYS[2], now + lease, ARGV[2])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[2], math.ceil(tonumber(last[2]) - now) + 1000)
return 0
