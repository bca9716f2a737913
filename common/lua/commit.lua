-- Commits one decision of one instance atomically: meta, journal, history,
-- outbox, timers and status indexes. Guarded by the expected version (the
-- commit count): when another worker committed first, nothing is written and
-- {-1, ver} tells the caller to reload.
-- Its KEYS and ARGV are declared in common/commit_proto.h, which also makes
-- the preamble this script runs after (store_commit.c): K_* and A_* name
-- the fixed KEYS and ARGV, S_* the sections (WIDTH[S_X] arguments per item),
-- A__SECTIONS where the first section's count is. After the fixed KEYS: when
-- the status changes, the index of the new status and of the old one (none
-- if new); last, on continue-as-new only, the list the ending run's history
-- goes to. The leased timers, the index of all instances and the retention
-- set are seldom written: their names are made here when needed.
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

local cur = redis.call('HGET', KEYS[K_META], 'ver') or '0'
if cur ~= ARGV[A_VER] then
  return {-1, tonumber(cur)}
end
local id, now, nver = ARGV[A_ID], ARGV[A_NOW], cur + 1
local reset = ARGV[A_RESET] ~= '-1' and num(ARGV[A_RESET])

-- where each section's items start, and how many
local from, count = {}, {}
local i = A__SECTIONS
for s = 1, #WIDTH do
  count[s] = num(ARGV[i])
  from[s] = i + 1
  i = i + 1 + count[s] * WIDTH[s]
end

local function pass(s)
  return unpack(ARGV, from[s], from[s] + count[s] * WIDTH[s] - 1)
end

-- Instances by type and status (<kp>counts, for baton stats), moved when
-- the meta's status or type is written: what it said before and after (the
-- stored status, which a blocked instance's may not be the one the worker
-- loaded). Only for instances counted from their start ('counted' in the
-- meta); those an older baton started are counted by the scheduler's pass
-- (counts_backfill.lua).
-- (A new instance's meta section carries its 'counted'.)
local m, a = KEYS[K_META], ARGV
local was, new_type, new_status
for k = from[S_META], from[S_META] + 2 * count[S_META] - 2, 2 do
  if ARGV[k] == 'status' then
    new_status = ARGV[k + 1]
  elseif ARGV[k] == 'type' then
    new_type = ARGV[k + 1]
  end
end
if (new_status or new_type) and cur ~= '0' then
  was = redis.call('HMGET', m, 'type', 'status', 'counted', 'tk')
end
if a[A_KPOS] ~= '' then
  redis.call('HSET', m, 'ver', nver, 'updated', now, 'jlen', a[A_JLEN], 'hlen', a[A_HLEN],
             'kpos', a[A_KPOS], 'koff', a[A_KOFF], 'kts', a[A_KTS], pass(S_META))
elseif a[A_KOFF] ~= '' then
  redis.call('HSET', m, 'ver', nver, 'updated', now, 'jlen', a[A_JLEN], 'hlen', a[A_HLEN],
             'koff', a[A_KOFF], 'kts', a[A_KTS], pass(S_META))
else
  redis.call('HSET', m, 'ver', nver, 'updated', now, 'jlen', a[A_JLEN], 'hlen', a[A_HLEN],
             pass(S_META))
end

-- One list element per record, packed by the caller (history.h): RPUSH is
-- the cheapest way to grow it and a list of small strings the smallest.
local hist = KEYS[K_HISTORY]
if reset then
  if reset > 0 then
    redis.call('RPUSH', hist, unpack(ARGV, from[S_HISTORY], from[S_HISTORY] + reset - 1))
  end
  redis.call('DEL', KEYS[K_JOURNAL])
  local run_hist = KEYS[#KEYS]
  if redis.call('EXISTS', hist) == 1 then
    redis.call('RENAME', hist, run_hist)
  end
  -- a run begun before the list (history.h): its stream goes with it
  local old = m .. ':history'
  if redis.call('EXISTS', old) == 1 then
    redis.call('RENAME', old, old .. ':' .. string.match(run_hist, '(%d+)$'))
  end
  if count[S_HISTORY] > reset then
    redis.call('RPUSH', hist, unpack(ARGV, from[S_HISTORY] + reset,
                                     from[S_HISTORY] + count[S_HISTORY] - 1))
  end
elseif count[S_HISTORY] > 0 then
  redis.call('RPUSH', hist, pass(S_HISTORY))
end

if count[S_JOURNAL] > 0 then
  redis.call('HSET', KEYS[K_JOURNAL], pass(S_JOURNAL))
end

if count[S_OUTBOX] > 0 then
  redis.call('HSET', KEYS[K_OUTBOX], pass(S_OUTBOX))
  redis.call('ZADD', KEYS[K_OUTBOX_INDEX], now, id)
end

local timers = KEYS[K_TIMERS]
local kp = string.sub(timers, 1, -7)
if count[S_TIMERS_ADD] > 0 then
  redis.call('ZADD', timers, pass(S_TIMERS_ADD))
  -- Schedulers sleep until the earliest timer they saw, or 1 s at most
  -- (scheduler/wake.h): one due sooner may come before their wake-up, so it
  -- wakes them (2 s: room for the clocks of two hosts to differ). pcall: an
  -- ACL user without the channel still commits; the timer then fires at the
  -- next wake-up, up to 1 s late.
  local soon = now + 2000
  local t0 = from[S_TIMERS_ADD]
  for t = t0, t0 + 2 * count[S_TIMERS_ADD] - 2, 2 do
    if tonumber(ARGV[t]) < soon then
      -- one channel for all shards: "<kp>:{<shard>}:" -> "<kp>:wake"
      redis.pcall('PUBLISH', string.gsub(kp, '{%d+}:$', '') .. 'wake', ARGV[t])
      break
    end
  end
end

-- A timer is in one of the two sets at a time (claim_timers.lua moves it,
-- a member is never added twice): the leased set only needs a look when the
-- timers set did not hold them all (most steps end before their timeout).
local ntd = count[S_TIMERS_DEL]
if ntd > 0 and redis.call('ZREM', timers, pass(S_TIMERS_DEL)) < ntd then
  redis.call('ZREM', timers .. ':leased', pass(S_TIMERS_DEL))
end

-- A run that ended (the instance finished, or continued as new) is archived
-- and deleted by the scheduler when its retention ends (retention_claim.lua):
-- no EXPIRE, which would delete it unarchived. Whoever waits for the
-- instance (baton start --wait, history --follow) subscribes to the
-- history's name: told here, not at every step. pcall as for the wake.
if count[S_RUNS_ENDED] > 0 then
  redis.call('ZADD', kp .. 'retention', pass(S_RUNS_ENDED))
  redis.pcall('PUBLISH', hist, a[A_HLEN])
  -- the run's take marks (take_task.lua), when it has any, end with it
  if reset or (was and was[4]) then
    redis.call('DEL', m .. ':tk')
    redis.call('HDEL', m, 'tk')
  end
end

-- a new instance is in no index yet
if cur == '0' then
  redis.call('ZADD', kp .. 'idx:all', now, id)
end
local nidx = #KEYS - K_TIMERS - (reset and 1 or 0)
if nidx > 0 then
  if nidx > 1 then
    redis.call('ZREM', KEYS[K_TIMERS + 2], id)
  end
  redis.call('ZADD', KEYS[K_TIMERS + 1], now, id)
end

-- the counts (see `was`): a field a type and status, dropped at 0
if cur == '0' and new_type and new_status then
  redis.call('HINCRBY', kp .. 'counts', new_type .. '|' .. new_status, 1)
elseif was and was[3] then
  local t, st = new_type or was[1], new_status or was[2]
  if t ~= was[1] or st ~= was[2] then
    local counts = kp .. 'counts'
    redis.call('HINCRBY', counts, t .. '|' .. st, 1)
    local field = was[1] .. '|' .. was[2]
    if redis.call('HINCRBY', counts, field, -1) == 0 then
      redis.call('HDEL', counts, field)
    end
  end
end
return {0, nver}
