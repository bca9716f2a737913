-- Commits one decision of one instance atomically: meta fields, journal
-- entries, history records, outbox commands, timers and status indexes.
-- Guarded by the expected version (the commit count): when another worker
-- committed first, nothing is written and {-1, ver} tells the caller to reload.
-- KEYS: 1 meta, 2 journal, 3 history, 4 outbox, 5 outbox index, 6 timers,
--       7 leased timers, 8 index of the old status, 9 index of the new status,
--       10 index of all instances, 11 where the history of the run that ends
--       goes on continue-as-new
-- ARGV: expected ver, id, now ms, reset (-1, or on continue-as-new how many
--       of the history records belong to the run that ends: the journal
--       restarts and that run's history is archived for a week), then counted
--       sections: meta pairs, journal pairs, history records, outbox pairs,
--       timers to add (member, due), timers to delete (member)
local ver = tonumber(redis.call('HGET', KEYS[1], 'ver') or '0')
if ver ~= tonumber(ARGV[1]) then
  return {-1, ver}
end
local id, now, reset = ARGV[2], ARGV[3], tonumber(ARGV[4])
local i = 5
local archive_ttl = 7 * 86400

local function section(width)
  local n = tonumber(ARGV[i])
  local t = {}
  for j = 1, n * width do t[j] = ARGV[i + j] end
  i = i + n * width + 1
  return t, n
end

-- one stream entry per decision, one "e" field per record: XADD is the
-- costliest call here, so it runs once (twice on continue-as-new)
local function append_history(records, from, to)
  if to < from then return end
  local fields = {}
  for j = from, to do
    fields[#fields + 1] = 'e'
    fields[#fields + 1] = records[j]
  end
  redis.call('XADD', KEYS[3], '*', unpack(fields))
end

local meta = section(2)
local journal, nj = section(2)
local hist, nh = section(1)

meta[#meta + 1] = 'ver'
meta[#meta + 1] = ver + 1
redis.call('HSET', KEYS[1], unpack(meta))

if reset >= 0 then
  append_history(hist, 1, reset)
  redis.call('DEL', KEYS[2])
  if redis.call('EXISTS', KEYS[3]) == 1 then
    redis.call('RENAME', KEYS[3], KEYS[11])
    redis.call('EXPIRE', KEYS[11], archive_ttl)
  end
  append_history(hist, reset + 1, nh)
else
  append_history(hist, 1, nh)
end

if nj > 0 then redis.call('HSET', KEYS[2], unpack(journal)) end

local outbox, no = section(2)
if no > 0 then
  redis.call('HSET', KEYS[4], unpack(outbox))
  redis.call('ZADD', KEYS[5], 'NX', now, id)
end

local tadd, nta = section(2)
if nta > 0 then
  local z = {}
  for j = 1, nta do
    z[2 * j - 1] = tadd[2 * j]
    z[2 * j] = tadd[2 * j - 1]
  end
  redis.call('ZADD', KEYS[6], unpack(z))
end

local tdel, ntd = section(1)
if ntd > 0 then
  redis.call('ZREM', KEYS[6], unpack(tdel))
  redis.call('ZREM', KEYS[7], unpack(tdel))
end

if ver == 0 then
  redis.call('ZADD', KEYS[10], now, id)
end
if KEYS[8] ~= KEYS[9] then
  redis.call('ZREM', KEYS[8], id)
  redis.call('ZADD', KEYS[9], now, id)
end
return {0, ver + 1}
