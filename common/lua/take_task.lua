-- Activity workers take tasks: is each attempt still wanted, and if so its
-- start-to-close timeout starts now (the time it waited in Kafka does not
-- count, unless the timeout already fired). One call checks the tasks of a
-- whole poll batch: a script call costs more than the few commands of one
-- task's check.
-- KEYS: 1 timers, then per task: its instance's journal, its meta hash.
-- ARGV: per task, in the order of KEYS: seq, attempt, timeout timer member,
--       new due, taker (the worker process, host:pid/start ms, for a task
--       a previous owner of its partition may have taken; "" for one
--       fetched here first, which takes without marking).
-- Returns per task 1 to run it, 0 when it is stale (step done, attempt
-- superseded, instance finished or gone), 2 when it is lost: LOST_MAX other
-- processes took this attempt before and none of them finished it.
--
-- Each take marks the attempt in "<meta>:tk" (field seq: "<attempt>|<lost>|
-- <taker>"): its taker and how many takers before it lost the attempt. A
-- take by another process than the mark's counts one more loss (its taker
-- died, or lost the partition, with the attempt unfinished); a take by the
-- same process (its partition came back) counts none. An activity that
-- crashes its process is thus run a bounded number of times, not forever:
-- the worker reports the attempt failed (WorkerLost, retryable: the retry
-- policy decides) and the partition flows on. The marks are a key of their
-- own, not part of the journal entry, whose small encoding a longer entry
-- would spoil for good; the meta's 'tk' says they exist, and commit.lua
-- deletes them when the run ends. A first run that crashes is not marked
-- (its task came in the steady flow): its next takers are, so an activity
-- that crashes its process runs LOST_MAX + 1 times per attempt.

-- True when a journal entry is a step waiting for this attempt (state 0).
-- bt_entry_encode writes every kind the same way,
-- {"k":"a","s":0,"n":"inc","at":1,...}, with integers in canonical decimal
-- (as the caller writes attempt): a pattern anchored on that prefix reads
-- them as text without cjson.decode (a Lua table and a strtod per number: it
-- cost more than the rest of a task's check). Any other text (a name with
-- escapes, other field orders or number forms) is decoded in full.
local function waiting(raw, attempt)
  local s, at = string.match(raw, '^{"k":"[^"\\]","s":(%-?%d+),"n":"[^"\\]*","at":(%-?%d+)[,}]')
  if s then
    return s == '0' and at == attempt
  end
  local entry = cjson.decode(raw)
  -- attempt + 0: one strtod, tonumber() costs two
  return entry.s == 0 and entry.at == attempt + 0
end

local LOST_MAX = 2

-- Marks the attempt taken by taker: 1 to run it, 2 when it is lost.
local function mark(meta, seq, attempt, taker)
  if taker == '' then
    return 1
  end
  local marks = meta .. ':tk'
  local lost = 0
  local prev = redis.call('HGET', marks, seq)
  if prev then
    local at, n, last = string.match(prev, '^(%d+)|(%d+)|(.*)$')
    if at == attempt then
      if last == taker then
        return 1
      end
      lost = tonumber(n) + 1
    end
  end
  if lost >= LOST_MAX then
    return 2
  end
  redis.call('HSET', marks, seq, attempt .. '|' .. lost .. '|' .. taker)
  redis.call('HSET', meta, 'tk', 1)
  return 1
end

local function take(journal, meta, seq, attempt, member, due, taker)
  local raw = redis.call('HGET', journal, seq)
  if not raw then
    return 0
  end
  if not waiting(raw, attempt) then
    return 0
  end
  -- a paused instance's attempt runs too: it was started before the pause
  -- (its outcome is kept for when the code runs again); its timeout timer
  -- is out of the set until the resume, so ZADD XX leaves it out
  local status = redis.call('HGET', meta, 'status')
  if status ~= 'running' and status ~= 'blocked' and status ~= 'paused' then
    return 0
  end
  local verdict = mark(meta, seq, attempt, taker)
  -- due 0: the task has no deadline (hand-written, say); its timer stays
  if verdict == 1 and due ~= '0' then
    redis.call('ZADD', KEYS[1], 'XX', due, member)
  end
  return verdict
end

local out = {}
for t = 1, (#KEYS - 1) / 2 do
  local a = 5 * (t - 1)
  out[t] = take(KEYS[2 * t], KEYS[2 * t + 1], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3],
                ARGV[a + 4], ARGV[a + 5])
end
return out
