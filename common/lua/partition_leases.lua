-- Shares one topic's partitions among the live consumers of a group when
-- they assign partitions themselves (--assignment leases, partlease.h)
-- instead of through Kafka's group protocol. Each consumer renews its
-- membership (scored by when it expires); its share is the partitions count
-- divided among the live members, the remainder to the first in name
-- order. A partition has at most one owner: a consumer takes only one that
-- no live member owns, and gives one back only after it stopped reading it
-- and committed its offsets (given, the next call), so that two consumers
-- never read one partition at once. A consumer that dies keeps its
-- partitions until its membership expires; one that leaves gives them back
-- at once. Time is Redis's.
-- KEYS: 1 members (zset: name -> expiry ms), 2 owners (hash: partition ->
-- name, and @last: when the last call came).
-- ARGV: name, ttl ms, partitions, mode ('1': leaving, give everything back;
-- '2': a heartbeat, the membership renewed and nothing else; else a renewal),
-- given (partitions given back, comma-separated).
-- Returns {held, surplus, live, share}: the partitions this consumer owns,
-- those of them beyond its share (to stop reading, then give back), the
-- count of live members and the share.
local me, ttl, parts = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- Nobody could renew while Redis was away (a restart): that time does not
-- count against the members, or the first to come back would take every
-- partition while the others still read theirs. (When every consumer died
-- instead, the next one waits one lease more.)
local last = tonumber(redis.call('HGET', KEYS[2], '@last'))
if last and now - last > ttl / 3 then
  local scored = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
  for i = 1, #scored, 2 do
    redis.call('ZADD', KEYS[1], tonumber(scored[i + 1]) + now - last, scored[i])
  end
end
redis.call('HSET', KEYS[2], '@last', now)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
for p in string.gmatch(ARGV[5], '%d+') do
  if redis.call('HGET', KEYS[2], p) == me then
    redis.call('HDEL', KEYS[2], p)
  end
end
if ARGV[4] == '2' then
  redis.call('ZADD', KEYS[1], now + ttl, me)
  redis.call('PEXPIRE', KEYS[1], 10 * ttl)
  redis.call('PEXPIRE', KEYS[2], 10 * ttl)
  return {{}, {}, 0, 0}
end
local flat = redis.call('HGETALL', KEYS[2])
local owner = {}
for i = 1, #flat, 2 do
  if flat[i] ~= '@last' then
    owner[tonumber(flat[i])] = flat[i + 1]
  end
end
if ARGV[4] == '1' then
  redis.call('ZREM', KEYS[1], me)
  for p, name in pairs(owner) do
    if name == me then
      redis.call('HDEL', KEYS[2], p)
    end
  end
  return {{}, {}, 0, 0}
end
redis.call('ZADD', KEYS[1], now + ttl, me)
redis.call('PEXPIRE', KEYS[1], 10 * ttl)
local live, alive = redis.call('ZRANGE', KEYS[1], 0, -1), {}
table.sort(live)
local rank = 0
for i, name in ipairs(live) do
  alive[name] = true
  if name == me then
    rank = i - 1
  end
end
local share = math.floor(parts / #live)
if rank < parts % #live then
  share = share + 1
end
local held, surplus = {}, {}
for p = 0, parts - 1 do
  if owner[p] == me then
    held[#held + 1] = p
  end
end
for p = 0, parts - 1 do
  if #held >= share then
    break
  end
  if not owner[p] or not alive[owner[p]] then
    redis.call('HSET', KEYS[2], p, me)
    held[#held + 1] = p
  end
end
redis.call('PEXPIRE', KEYS[2], 10 * ttl)
for i = share + 1, #held do
  surplus[#surplus + 1] = held[i]
end
return {held, surplus, #live, share}
