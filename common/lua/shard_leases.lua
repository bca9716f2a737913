-- Shares a sharded store's shards (store.h) among the live schedulers. Each
-- renews its membership (scored by when it expires) and takes the shards of
-- its share: those whose number modulo the live count is its rank among the
-- members' names. A shard it holds outside its share it keeps until the
-- share's owner has taken it over, so that no shard is left unvisited while
-- schedulers come and go: two visit it together for at most one renewal,
-- which is harmless, since each timer, outbox entry and retention run is
-- claimed on its own. A scheduler that dies keeps its share until its
-- membership expires; one that leaves gives its shards back at once.
-- Time is Redis's, so the schedulers' clocks need not agree.
-- KEYS: 1 members (zset: name -> expiry ms), 2 owners (hash: shard -> name).
-- ARGV: name, ttl ms, shards, leaving ('1': drop out and give them back).
-- Returns the shards held, then the count of live schedulers.
local me, ttl, shards = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local flat = redis.call('HGETALL', KEYS[2])
local owner = {}
for i = 1, #flat, 2 do
  owner[tonumber(flat[i])] = flat[i + 1]
end
if ARGV[4] == '1' then
  redis.call('ZREM', KEYS[1], me)
  for shard, name in pairs(owner) do
    if name == me then
      redis.call('HDEL', KEYS[2], shard)
    end
  end
  return {0}
end
redis.call('ZADD', KEYS[1], now + ttl, me)
local live = redis.call('ZRANGE', KEYS[1], 0, -1)
table.sort(live)
local rank = 0
for i, name in ipairs(live) do
  if name == me then
    rank = i - 1
  end
end
local held = {}
for shard = 0, shards - 1 do
  if shard % #live == rank then
    if owner[shard] ~= me then
      redis.call('HSET', KEYS[2], shard, me)
    end
    held[#held + 1] = shard
  elseif owner[shard] == me then
    held[#held + 1] = shard
  end
end
held[#held + 1] = #live
return held
