-- Commits one decision of one instance atomically: meta, journal, history,
-- outbox, timers and status indexes. Guarded by the expected version (the
-- commit count): when another worker committed first, nothing is written and
-- {-1, ver} tells the caller to reload.
-- KEYS: 1 meta, 2 journal, 3 history, 4 outbox, 5 outbox index (by last
--       commit with commands), 6 timers (<kp>:timers); when the status
--       changes, 7 index of the new status and 8 of the old one (none if
--       new); last, on continue-as-new only: where the ending run's history
--       goes. The leased timers and the index of all instances are seldom
--       written: their names are made here when needed.
-- ARGV: expected ver, id, now ms, reset (-1, or on continue-as-new how many
--       history records belong to the run that ends: the journal restarts,
--       that run's history is kept under its own key until its retention
--       ends), jlen, hlen, kpos, koff,
--       kts (kpos "" when it is stored already, koff and kts "" too when no
--       Kafka event caused it), then sections, each a count n
--       and n items: other meta pairs, journal pairs (seq, entry), history
--       records, outbox (field, command), timers to add (due, member),
--       timers to delete (member), runs that ended (retention due, member
--       "<run>|<id>").
-- Sections come in the shape the commands take, passed on with unpack(ARGV,
-- from, to): Lua tables cost more than the commands.
-- An argument costs more than a command's work on it (parsing, a Lua string,
-- a Redis object): names of fields written each time are constants, keys are
-- passed only when used. tonumber(text) costs two strtod: num() reads a digit.
local function num(s)
  if #s == 1 then
    return s:byte() - 48
  end
  return tonumber(s)
end

local cur = redis.call('HGET', KEYS[1], 'ver') or '0'
if cur ~= ARGV[1] then
  return {-1, tonumber(cur)}
end
local id, now, nver = ARGV[2], ARGV[3], cur + 1
local reset = ARGV[4] ~= '-1' and num(ARGV[4])
local i = 10

-- The next section of ARGV: the index of its first item, and n.
local function section(width)
  local n = num(ARGV[i])
  local from = i + 1
  i = from + n * width
  return from, n
end

local meta, nm = section(2)
local journal, nj = section(2)
local hist, nh = section(1)

local m, a = KEYS[1], ARGV
if a[7] ~= '' then
  redis.call('HSET', m, 'ver', nver, 'updated', now, 'jlen', a[5], 'hlen', a[6],
             'kpos', a[7], 'koff', a[8], 'kts', a[9], unpack(a, meta, meta + 2 * nm - 1))
elseif a[8] ~= '' then
  redis.call('HSET', m, 'ver', nver, 'updated', now, 'jlen', a[5], 'hlen', a[6],
             'koff', a[8], 'kts', a[9], unpack(a, meta, meta + 2 * nm - 1))
else
  redis.call('HSET', m, 'ver', nver, 'updated', now, 'jlen', a[5], 'hlen', a[6],
             unpack(a, meta, meta + 2 * nm - 1))
end

-- records first .. last: one stream entry per decision, one "e" field each
-- (XADD is the costliest call: once, twice on continue-as-new). Most
-- decisions have one or two: those need no table for the field names.
local function append_history(first, last)
  local h, n = hist + first - 1, last - first + 1
  if n == 1 then
    redis.call('XADD', KEYS[3], '*', 'e', ARGV[h])
  elseif n == 2 then
    redis.call('XADD', KEYS[3], '*', 'e', ARGV[h], 'e', ARGV[h + 1])
  elseif n > 2 then
    local t = {}
    for r = 0, n - 1 do
      t[2 * r + 1], t[2 * r + 2] = 'e', ARGV[h + r]
    end
    redis.call('XADD', KEYS[3], '*', unpack(t))
  end
end

if reset then
  append_history(1, reset)
  redis.call('DEL', KEYS[2])
  if redis.call('EXISTS', KEYS[3]) == 1 then
    redis.call('RENAME', KEYS[3], KEYS[#KEYS])
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
  redis.call('ZADD', KEYS[5], now, id)
end

local tadd, nta = section(2)
if nta > 0 then
  redis.call('ZADD', KEYS[6], unpack(ARGV, tadd, tadd + 2 * nta - 1))
  -- Schedulers sleep until the earliest timer they saw, or 1 s at most
  -- (scheduler/wake.h): one due sooner may come before their wake-up, so it
  -- wakes them (2 s: room for the clocks of two hosts to differ). pcall: an
  -- ACL user without the channel still commits; the timer then fires at the
  -- next wake-up, up to 1 s late.
  local soon = now + 2000
  for t = tadd, tadd + 2 * nta - 2, 2 do
    if tonumber(ARGV[t]) < soon then
      redis.pcall('PUBLISH', string.sub(KEYS[6], 1, -7) .. 'wake', ARGV[t])
      break
    end
  end
end

-- A timer is in one of the two sets at a time (claim_timers.lua moves it,
-- a member is never added twice): the leased set only needs a look when the
-- timers set did not hold them all (most steps end before their timeout).
local tdel, ntd = section(1)
if ntd > 0 and redis.call('ZREM', KEYS[6], unpack(ARGV, tdel, tdel + ntd - 1)) < ntd then
  redis.call('ZREM', KEYS[6] .. ':leased', unpack(ARGV, tdel, tdel + ntd - 1))
end

-- A run that ended (the instance finished, or continued as new) is archived
-- and deleted by the scheduler when its retention ends (retention_claim.lua):
-- no EXPIRE, which would delete it unarchived.
local rend, nre = section(2)
if nre > 0 then
  redis.call('ZADD', string.sub(KEYS[6], 1, -7) .. 'retention',
             unpack(ARGV, rend, rend + 2 * nre - 1))
end

-- a new instance is in no index yet
if cur == '0' then
  redis.call('ZADD', string.sub(KEYS[6], 1, -7) .. 'idx:all', now, id)
end
local nidx = #KEYS - 6 - (reset and 1 or 0)
if nidx > 0 then
  if nidx > 1 then
    redis.call('ZREM', KEYS[8], id)
  end
  redis.call('ZADD', KEYS[7], now, id)
end
return {0, nver}
