/* Rate limits shared by every worker: one token bucket per key in Redis
 * (<prefix>:rl:<key>, a hash with rate, burst, tokens, ts and until, and
 * throttles and throttled_at for operators), taken from with one Lua call on
 * Redis's clock. Each worker shares how many of its tasks wait for a key's
 * token in <prefix>:rlw:<key> (worker -> count, fading with the worker). Defaults come
 * from the activity's registration; operators change rate and burst live with HSET or
 * `baton ratelimit set`. */
#ifndef BT_RATELIMIT_H
#define BT_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "redis.h"

/* Writes "<prefix>:rl:<key>" into buf; returns buf. */
char *bt_ratelimit_key(const char *prefix, const char *key, char *buf, size_t n);

/* Queues one take on key's bucket into r's pipeline; the bucket is created
 * from rate (tokens/s; <= 0: no limit) and burst when missing. Returns 0 or
 * BT_ENOMEM. */
int bt_ratelimit_append_take(struct bt_redis *r, const char *prefix, const char *key,
                             double rate, int burst);

/* The take's reply: 0 when a token was taken, else the ms to wait before
 * asking again (Redis unreachable: a short wait, so the limit still holds).
 * *tokens gets the whole tokens left in the bucket, or -1 when unknown. */
int64_t bt_ratelimit_wait(const redisReply *reply, int64_t *tokens);

/* Hands out no token for key to anyone for ms from now (Redis's clock).
 * Returns 0, or BT_EAGAIN when Redis is unreachable or refused. */
int bt_ratelimit_throttle(struct bt_redis *r, const char *prefix, const char *key,
                          int64_t ms);

/* How long a worker's shared count of waiters lives past its last write
 * (it rewrites it every second while it has waiters). */
#define BT_RATELIMIT_WAITING_TTL_MS 5000

/* Shares that worker has n tasks waiting for key's token (0: none, which
 * removes its count). Returns the waiters of every live worker, summed, or
 * BT_EAGAIN when Redis is unreachable or refused. */
int64_t bt_ratelimit_share_waiting(struct bt_redis *r, const char *prefix,
                                   const char *key, const char *worker, int64_t n);

/* The tasks of every live worker waiting for key's token, summed; BT_EAGAIN
 * when Redis is unreachable or refused. */
int64_t bt_ratelimit_waiters(struct bt_redis *r, const char *prefix, const char *key);

#endif
