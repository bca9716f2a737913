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
--       sections, each a count n and its n items: meta pairs (field, value),
--       journal pairs (seq, entry), history records ("e", record), outbox
--       pairs (field, command), timers to add (due, member), timers to
--       delete (member).
-- The sections come in the shape the Redis commands take, so that each is
-- passed on with unpack(ARGV, from, to): building Lua tables here cost more
-- than all the commands of the script (allocation and garbage collection).
local ver = tonumber(redis.call('HGET', KEYS[1], 'ver') or '0')
if ver ~= tonumber(ARGV[1]) then
  return {-1, ver}
end
local id, now, reset = ARGV[2], ARGV[3], tonumber(ARGV[4])
local i = 5
local archive_ttl = 7 * 86400

-- The next section of ARGV: the index of its first item (the range is
-- from .. from + n * width - 1) and n.
local function section(width)
  local n = tonumber(ARGV[i])
  local from = i + 1
  i = from + n * width
  return from, n
end

local meta, nm = section(2)
local journal, nj = section(2)
local hist, nh = section(2)

redis.call('HSET', KEYS[1], 'ver', ver + 1, unpack(ARGV, meta, meta + 2 * nm - 1))

-- records first .. last: one stream entry per decision, one "e" field per
-- record (XADD is the costliest call here, so it runs once, twice on
-- continue-as-new)
local function append_history(first, last)
  if last >= first then
    redis.call('XADD', KEYS[3], '*', unpack(ARGV, hist + 2 * (first - 1), hist + 2 * last - 1))
  end
end

if reset >= 0 then
  append_history(1, reset)
  redis.call('DEL', KEYS[2])
  if redis.call('EXISTS', KEYS[3]) == 1 then
    redis.call('RENAME', KEYS[3], KEYS[11])
    redis.call('EXPIRE', KEYS[11], archive_ttl)
  end
  append_history(reset + 1, nh)
else
  append_history(1, nh)
end

if nj > 0 then
  redis.call('HSET', KEYS[2], unpack(ARGV, journal, journal + 2 * nj - 1))
end

local outbox, no = section(2)
if no > 0 then
  redis.call('HSET', KEYS[4], unpack(ARGV, outbox, outbox + 2 * no - 1))
  redis.call('ZADD', KEYS[5], 'NX', now, id)
end

local tadd, nta = section(2)
if nta > 0 then
  redis.call('ZADD', KEYS[6], unpack(ARGV, tadd, tadd + 2 * nta - 1))
end

-- A timer is in one of the two sets at a time (claim_timers.lua moves it,
-- and a member is never added twice), so the leased set only needs a look
-- when the timers set did not hold them all: most steps end before their
-- timeout fires.
local tdel, ntd = section(1)
if ntd > 0 and redis.call('ZREM', KEYS[6], unpack(ARGV, tdel, tdel + ntd - 1)) < ntd then
  redis.call('ZREM', KEYS[7], unpack(ARGV, tdel, tdel + ntd - 1))
end

-- a new instance is in no status index yet
if ver == 0 then
  redis.call('ZADD', KEYS[10], now, id)
end
if KEYS[8] ~= KEYS[9] then
  if ver > 0 then
    redis.call('ZREM', KEYS[8], id)
  end
  redis.call('ZADD', KEYS[9], now, id)
end
return {0, ver + 1}
