-- Ends the claims of archived runs (retention_claim.lua): deletes each run
-- whose archive Kafka confirmed, or puts it back in the retention set to be
-- tried again later. Only while the caller's lease holds (the score in the
-- leased set is its token): a holder whose lease expired and was claimed
-- again leaves the run to the new holder. A run is "<run>|<id>": the last
-- run of the instance when its meta hash says so, and the instance goes with
-- it; an earlier one (continued as new) is its :h:<run> list only (and the
-- :history:<run> stream of a run written before the list, history.h).
-- Checked here again, atomically with the delete: the instance has finished,
-- its outbox is empty (its result is on Kafka) and its history is the one
-- archived.
-- KEYS: 1 retention set, 2 leased set.
-- ARGV: key prefix, now ms, then per run 6 values: member, token, action
--       ("d" delete, "r" try again at due), due, history entries archived
--       (list elements plus old stream entries), tombstone ("" none: else "<ttl ms>|<text>", kept as
--       <kp>:{id}:deleted).
-- Returns per run: 1 deleted, 2 put back, 0 lease lost, -1 refused (the
-- instance is not finished: dropped), -2 put back (its outbox is not empty),
-- -3 put back (its history changed since it was read).
local kp, now = ARGV[1], tonumber(ARGV[2])
local final = {completed = true, failed = true, cancelled = true, terminated = true}
local out = {}

-- The entries of a run's history: its list's, and its old stream's if any.
local function entries_of(key, legacy)
  return redis.call('LLEN', key) + redis.call('XLEN', legacy)
end

local function put_back(member, due)
  redis.call('ZREM', KEYS[2], member)
  redis.call('ZADD', KEYS[1], due, member)
end

local function delete_last(meta, id, entries, tombstone)
  local m = redis.call('HMGET', meta, 'status', 'type', 'counted')
  local status = m[1]
  if not final[status] then
    return -1
  end
  if redis.call('EXISTS', meta .. ':outbox') == 1 then
    return -2
  end
  if entries_of(meta .. ':h', meta .. ':history') ~= entries then
    return -3
  end
  redis.call('DEL', meta, meta .. ':journal', meta .. ':h', meta .. ':history',
             meta .. ':outbox', meta .. ':resend')
  redis.call('ZREM', kp .. ':idx:all', id)
  redis.call('ZREM', kp .. ':idx:' .. status, id)
  redis.call('ZREM', kp .. ':outbox', id)
  if m[3] then -- counted (commit.lua): it leaves the counts
    local field = m[2] .. '|' .. status
    if redis.call('HINCRBY', kp .. ':counts', field, -1) == 0 then
      redis.call('HDEL', kp .. ':counts', field)
    end
  end
  if tombstone ~= '' then
    local ttl, text = string.match(tombstone, '^(%d+)|(.*)$')
    redis.call('SET', meta .. ':deleted', text, 'PX', ttl)
  end
  return 1
end

local function settle(member, token, action, due, entries, tombstone)
  if tonumber(redis.call('ZSCORE', KEYS[2], member)) ~= tonumber(token) then
    return 0
  end
  if action == 'r' then
    put_back(member, due)
    return 2
  end
  local run, id = string.match(member, '^(%d+)|(.+)$')
  local meta = kp .. ':{' .. (id or '') .. '}'
  local r = 1
  if id and redis.call('HGET', meta, 'run') == run then
    r = delete_last(meta, id, tonumber(entries), tombstone)
  elseif id then
    local list, legacy = meta .. ':h:' .. run, meta .. ':history:' .. run
    if entries_of(list, legacy) ~= tonumber(entries) then
      r = -3
    else
      redis.call('DEL', list, legacy)
    end
  end
  if r == -2 or r == -3 then
    put_back(member, now + 5000)
  else
    redis.call('ZREM', KEYS[2], member)
  end
  return r
end

for i = 3, #ARGV, 6 do
  out[#out + 1] = settle(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4],
                         ARGV[i + 5])
end
return out
