-- Claims due schedules for one scheduler: each due member's score becomes its
-- lease expiry in this one atomic step, so replicas never fire a schedule
-- together. A scheduler that dies before re-arming a schedule leaves a lease
-- that expires, and the schedule is claimed again; its due time stays in its
-- hash (field next), so the retry fires the same slot with the same id.
-- Paused schedules score +inf and are never due.
-- KEYS: 1 schedules. ARGV: now ms, lease ms, limit. Returns the names
-- claimed, then the earliest score left that is not a pause (a due time or
-- a lease expiry; 0: none): the scheduler sleeps until then when idle.
local now, lease = tonumber(ARGV[1]), tonumber(ARGV[2])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, ARGV[3])
for _, name in ipairs(due) do
  redis.call('ZADD', KEYS[1], now + lease, name)
end
local nxt = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(+inf', 'WITHSCORES', 'LIMIT', 0, 1)
due[#due + 1] = nxt[2] and tonumber(nxt[2]) or 0
return due
