-- Forgets outbox commands whose delivery Kafka confirmed, for all the
-- instances of one landed batch in one call (one EVALSHA per batch instead of
-- one per instance), and drops from the outbox index the instances that have
-- nothing left to send. An outbox can hold more than this batch's commands (a
-- later decision of the instance committed since): then it stays indexed.
-- Its keys span instances, as commit.lua's global indexes already do.
-- KEYS: 1 outbox index, 2.. the instances' outboxes.
-- ARGV: per outbox, in the order of KEYS: instance id, n, then n fields.
-- Returns how many instances left the index.
local empty = {}
local i = 1
for k = 2, #KEYS do
  -- ARGV[i + 1] + 0: one strtod, tonumber() costs two
  local id, n = ARGV[i], ARGV[i + 1] + 0
  if n > 0 then
    redis.call('HDEL', KEYS[k], unpack(ARGV, i + 2, i + 1 + n))
  end
  if redis.call('HLEN', KEYS[k]) == 0 then
    empty[#empty + 1] = id
  end
  i = i + 2 + n
end
-- one ZREM for the whole batch
if #empty > 0 then
  redis.call('ZREM', KEYS[1], unpack(empty))
end
return #empty
