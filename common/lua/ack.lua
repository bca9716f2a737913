-- Forgets outbox commands whose delivery Kafka confirmed, and drops the
-- instance from the outbox index once nothing of it is left to send.
-- KEYS: 1 outbox, 2 outbox index. ARGV: id, fields...
if #ARGV >= 2 then
  redis.call('HDEL', KEYS[1], unpack(ARGV, 2))
end
if redis.call('HLEN', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return 0
