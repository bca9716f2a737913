-- Counts the instances that an older baton started, which commit.lua does
-- not count (no 'counted' in their meta): the scheduler feeds it the members
-- of a shard's index of all instances (ZSCAN: every entry present for a
-- whole scan is seen at least once). Atomic with the commits and deletes,
-- and an instance is counted once: it is marked.
-- KEYS: 1 the shard's counts hash.
-- ARGV: the shard's key prefix, then pairs (id, score: unused).
-- Returns how many instances were counted.
local kp = ARGV[1]
local added = 0

for i = 2, #ARGV, 2 do
  local meta = kp .. ':{' .. ARGV[i] .. '}'
  local m = redis.call('HMGET', meta, 'type', 'status', 'counted')
  if m[1] and m[2] and not m[3] then
    redis.call('HINCRBY', KEYS[1], m[1] .. '|' .. m[2], 1)
    redis.call('HSET', meta, 'counted', '1')
    added = added + 1
  end
end
return added
