-- Changes one schedule from the CLI: its hash and its entry in the schedules
-- set together, so a scheduler never sees one without the other.
-- KEYS: 1 schedule hash, 2 schedules. ARGV: 1 name, 2 mode: add (only when
-- the schedule does not exist) | update (only when it does) | delete,
-- 3 score in the set ('' = unchanged; '+inf' = paused), then field, value
-- pairs to set (an empty value deletes the field).
-- Returns 1, or 0 when the mode's condition does not hold.
local exists = redis.call('EXISTS', KEYS[1]) == 1
if ARGV[2] == 'delete' then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  return exists and 1 or 0
end
if exists ~= (ARGV[2] == 'update') then
  return 0
end
for i = 4, #ARGV, 2 do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', KEYS[1], ARGV[i])
  else
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
if ARGV[3] ~= '' then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
  -- an idle scheduler sleeps until the earliest fire it knew of (1 s at
  -- most): this one may be sooner (commit.lua wakes it the same way)
  -- one channel for all shards: "<kp>:{0}:schedules" -> "<kp>:wake"
  local kp = string.gsub(string.sub(KEYS[2], 1, -10), '{%d+}:$', '')
  redis.pcall('PUBLISH', kp .. 'wake', ARGV[3])
end
return 1
