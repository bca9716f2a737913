-- Claims runs whose retention ended, for one scheduler (or `baton delete`):
-- each moves from the retention set to the leased set (score: lease expiry,
-- which is also the claim's token) in this one atomic step, so two schedulers
-- never archive one run both. A lease that expired (its holder died between
-- the archive and the delete) is claimed again: that run may then reach the
-- archive twice, and consumers drop the second by (id, run).
-- KEYS: 1 retention set, 2 leased set.
-- ARGV: now ms, lease ms, limit, then the members to claim whatever their due
--       time (`baton delete`); none: the due ones and the expired leases.
-- Returns {member, token, previous, member, token, previous, ...}: previous
-- is the token of the expired claim taken over (its holder may have archived
-- the run already: the new holder looks on Kafka first), 0 for a fresh one;
-- a member given that another holds (its lease not expired) is left out.
local now, lease, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local token = now + lease
local out = {}

local function claim(member, previous)
  redis.call('ZREM', KEYS[1], member)
  redis.call('ZADD', KEYS[2], token, member)
  out[#out + 1] = member
  out[#out + 1] = token
  out[#out + 1] = previous or 0
end

if #ARGV > 3 then
  for i = 4, #ARGV do
    local held = redis.call('ZSCORE', KEYS[2], ARGV[i])
    if not held or tonumber(held) <= now then
      claim(ARGV[i], tonumber(held))
    end
  end
  return out
end

local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'WITHSCORES', 'LIMIT',
                          0, limit)
for i = 1, #expired, 2 do
  claim(expired[i], tonumber(expired[i + 1]))
end
if #out / 3 < limit then
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0,
                         limit - #out / 3)
  for _, m in ipairs(due) do
    claim(m)
  end
end
return out
