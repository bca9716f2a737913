-- Forgets outbox commands whose delivery Kafka confirmed, for all the
-- instances of one landed batch in one call (one EVALSHA per batch instead of
-- one per instance). An emptied outbox stays in the outbox index: the
-- scheduler's sweep (outbox_sweep.lua) drops it there once its grace has
-- passed. Looking here would cost an HLEN per instance and decision, the
-- sweep's look one per instance.
-- KEYS: the instances' outboxes.
-- ARGV: per outbox, in the order of KEYS: n, then n fields.
-- Returns how many commands were forgotten.
local gone = 0
local i = 1
for k = 1, #KEYS do
  -- ARGV[i] + 0: one strtod, tonumber() costs two
  local n = ARGV[i] + 0
  if n > 0 then
    gone = gone + redis.call('HDEL', KEYS[k], unpack(ARGV, i + 1, i + n))
  end
  i = i + 1 + n
end
return gone
