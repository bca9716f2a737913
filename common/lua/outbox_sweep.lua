-- One step of the scheduler's outbox sweep: looks at up to limit instances
-- of the outbox index whose last commit with commands is older than before,
-- drops those whose outbox is empty (ack.lua emptied it and leaves the index
-- alone) and returns the others: their commands wait since before, a worker
-- died before it saw them delivered. The drop is atomic with the look, and
-- commit.lua adds an instance again with each commit that has commands, so
-- an instance with commands is always indexed. The ones returned are claimed:
-- their score becomes now, so that another scheduler's sweep does not send
-- them too (a result would come once per scheduler); if this one dies before
-- it sent them, they are past the grace again a grace later.
-- KEYS: 1 outbox index. ARGV: before (ms), limit, key prefix, now (ms).
-- Returns {how many were looked at, id, id, ...}.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local keys = {}
for j, id in ipairs(ids) do
  keys[j] = ARGV[3] .. ':{' .. id .. '}:outbox'
end
local out, empty = {#ids}, {}

-- Almost all are empty: one EXISTS answers for a whole range (a call per
-- instance cost more than the rest of the sweep); a range with some left is
-- split in two.
local function look(lo, hi)
  local n = redis.call('EXISTS', unpack(keys, lo, hi))
  if n == 0 or n == hi - lo + 1 then
    local into = n == 0 and empty or out
    for j = lo, hi do
      into[#into + 1] = ids[j]
    end
  else
    local mid = math.floor((lo + hi) / 2)
    look(lo, mid)
    look(mid + 1, hi)
  end
end

if #ids > 0 then
  look(1, #ids)
end
-- one ZREM for all of them
if #empty > 0 then
  redis.call('ZREM', KEYS[1], unpack(empty))
end
if #out > 1 then
  local claim = {}
  for j = 2, #out do
    claim[#claim + 1] = ARGV[4]
    claim[#claim + 1] = out[j]
  end
  redis.call('ZADD', KEYS[1], 'XX', unpack(claim))
end
return out
