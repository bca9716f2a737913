-- An activity worker takes a task: is its attempt still wanted, and if so its
-- start-to-close timeout starts now (the time it waited in Kafka does not
-- count, unless the timeout already fired).
-- KEYS: 1 journal, 2 timers, 3 the instance's meta hash.
-- ARGV: seq, attempt, timeout timer member, new due.
-- Returns 1 to run it, 0 when it is stale (step done, attempt superseded,
-- instance finished or gone).
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then
  return 0
end
local entry = cjson.decode(raw)
if entry.s ~= 0 or entry.at ~= tonumber(ARGV[2]) then
  return 0
end
local status = redis.call('HGET', KEYS[3], 'status')
if status ~= 'running' and status ~= 'blocked' then
  return 0
end
redis.call('ZADD', KEYS[2], 'XX', ARGV[4], ARGV[3])
return 1
