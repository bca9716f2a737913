-- Puts in the retention set the finished instances that have no run in it:
-- those that finished before retention existed (a commit now puts every run
-- it ends there itself). The scheduler feeds it the members of the status
-- indexes of finished instances (ZSCAN: every entry present for a whole scan
-- is seen at least once; adding is idempotent). Atomic with the claims and
-- the deletes: a run claimed or deleted meanwhile is not added again.
-- KEYS: 1 retention set, 2 leased set.
-- ARGV: key prefix, default retention ms, n rules, n pairs (type, ms), then
--       pairs (id, finish time ms: its score in the status index).
-- Returns how many runs were added.
local kp, default = ARGV[1], tonumber(ARGV[2])
local nrules = tonumber(ARGV[3])
local rules = {}
for i = 4, 3 + 2 * nrules, 2 do
  rules[ARGV[i]] = tonumber(ARGV[i + 1])
end
local final = {completed = true, failed = true, cancelled = true, terminated = true}
local added = 0

for i = 4 + 2 * nrules, #ARGV, 2 do
  local id, finished = ARGV[i], tonumber(ARGV[i + 1])
  local meta = redis.call('HMGET', kp .. ':{' .. id .. '}', 'run', 'type', 'status')
  if meta[1] and final[meta[3]] then
    local member = meta[1] .. '|' .. id
    if not redis.call('ZSCORE', KEYS[1], member) and
        not redis.call('ZSCORE', KEYS[2], member) then
      redis.call('ZADD', KEYS[1], finished + (rules[meta[2]] or default), member)
      added = added + 1
    end
  end
end
return added
