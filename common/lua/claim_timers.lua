-- Claims due timers for one scheduler: each moves from the timers set to the
-- leased set (score: lease expiry) in this one atomic step, so replicas never
-- fire a timer twice. Leases that expired (their scheduler died before the
-- event was delivered) are claimed again.
-- KEYS: 1 timers, 2 leased. ARGV: now ms, lease ms, limit, key prefix.
-- Returns {member, due, queue, member, due, queue, ..., next}: queue is the
-- instance's workflow queue ("" for default or a gone instance), whose events
-- topic the timer goes to; looked up here to spare the scheduler a round trip.
-- next is the earliest due time or lease expiry left in either set (0: both
-- empty): the scheduler sleeps until then when nothing was due.
local now, lease, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local kp = ARGV[4]
local out = {}

-- members are "<kind>|<seq>|<attempt>|<id>": the id is the rest
local function claimed(member, due)
  local id = string.match(member, '^[^|]*|[^|]*|[^|]*|(.+)$')
  local queue = id and redis.call('HGET', kp .. ':{' .. id .. '}', 'queue')
  out[#out + 1] = member
  out[#out + 1] = due
  out[#out + 1] = queue or ''
end

local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, limit)
for _, m in ipairs(expired) do
  redis.call('ZADD', KEYS[2], now + lease, m)
  claimed(m, tostring(now))
end
if #expired < limit then
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0,
                         limit - #expired)
  for i = 1, #due, 2 do
    redis.call('ZREM', KEYS[1], due[i])
    redis.call('ZADD', KEYS[2], now + lease, due[i])
    claimed(due[i], due[i + 1])
  end
end

local function first(key)
  local f = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return f[2] and tonumber(f[2])
end
local a, b = first(KEYS[1]), first(KEYS[2])
out[#out + 1] = (a and b and math.min(a, b)) or a or b or 0
return out
