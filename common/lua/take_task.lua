-- Activity workers take tasks: is each attempt still wanted, and if so its
-- start-to-close timeout starts now (the time it waited in Kafka does not
-- count, unless the timeout already fired). One call checks the tasks of a
-- whole poll batch: a script call costs more than the few commands of one
-- task's check.
-- KEYS: 1 timers, then per task: its instance's journal, its meta hash.
-- ARGV: per task, in the order of KEYS: seq, attempt, timeout timer member,
--       new due.
-- Returns per task 1 to run it, 0 when it is stale (step done, attempt
-- superseded, instance finished or gone).

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

local function take(journal, meta, seq, attempt, member, due)
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
  -- due 0: the task has no deadline (hand-written, say); its timer stays
  if due ~= '0' then
    redis.call('ZADD', KEYS[1], 'XX', due, member)
  end
  return 1
end

local out = {}
for t = 1, (#KEYS - 1) / 2 do
  local a = 4 * (t - 1)
  out[t] = take(KEYS[2 * t], KEYS[2 * t + 1], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3],
                ARGV[a + 4])
end
return out
