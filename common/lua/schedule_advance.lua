-- Records what a scheduler did with a schedule it claimed and re-arms it, but
-- only when the schedule still has the due time it was claimed with: one that
-- was deleted, resumed or re-added since, or already advanced by another
-- scheduler after this one's lease expired, is left alone, so a late
-- scheduler never moves a schedule back.
-- KEYS: 1 schedule hash, 2 schedules. ARGV: 1 name, 2 claimed due ms,
-- 3 next due ms ('' deletes the schedule: a one-shot that fired),
-- 4 outcome: fired | skipped | none, 5 instance id, 6 now ms,
-- 7 error ('' = none: else the schedule is paused with it)
-- Returns 1, or 0 when the schedule had changed.
if redis.call('HGET', KEYS[1], 'next') ~= ARGV[2] then
  return 0
end
if ARGV[3] == '' then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 1
end
redis.call('HSET', KEYS[1], 'next', ARGV[3])
if ARGV[4] == 'fired' then
  redis.call('HSET', KEYS[1], 'last_id', ARGV[5], 'last_fire', ARGV[6])
  redis.call('HINCRBY', KEYS[1], 'fired', 1)
elseif ARGV[4] == 'skipped' then
  redis.call('HSET', KEYS[1], 'last_skip', ARGV[2])
  redis.call('HINCRBY', KEYS[1], 'skipped', 1)
end
if ARGV[7] ~= '' then
  redis.call('HSET', KEYS[1], 'paused', '1', 'error', ARGV[7])
end
if redis.call('HGET', KEYS[1], 'paused') == '1' then
  redis.call('ZADD', KEYS[2], '+inf', ARGV[1])
else
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
end
return 1
