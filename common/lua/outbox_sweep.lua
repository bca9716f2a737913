-- One step of the scheduler's outbox sweep: looks at up to limit instances
-- of the outbox index whose last commit with commands is older than before,
-- from the offset-th on, drops those whose outbox is empty (ack.lua emptied
-- it and leaves the index alone) and returns the others: their commands wait
-- since before, a worker died before it saw them delivered. The drop is
-- atomic with the look, and commit.lua adds an instance again with each
-- commit that has commands, so an instance with commands is always indexed.
-- KEYS: 1 outbox index. ARGV: before (ms), offset, limit, key prefix.
-- Returns {how many were looked at, id, id, ...}.
local kp = ARGV[4]
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', ARGV[2], ARGV[3])
local out, empty = {#ids}, {}
for _, id in ipairs(ids) do
  if redis.call('EXISTS', kp .. ':{' .. id .. '}:outbox') == 1 then
    out[#out + 1] = id
  else
    empty[#empty + 1] = id
  end
end
-- one ZREM for all of them
if #empty > 0 then
  redis.call('ZREM', KEYS[1], unpack(empty))
end
return out
