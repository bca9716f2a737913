/* Concurrency limits shared by every worker: at most `limit` steps with the
 * same key run at once across all worker processes and threads. Redis holds
 * the live limit in <prefix>:cc:<key> (a hash, field limit; created from the
 * activity's registered default, changed live with HSET or `baton concurrency
 * set`) and the running steps as leases in the sorted set
 * {<prefix>:cc:<key>}:holders (score: expiry on Redis's clock; the hash tag
 * puts both keys in one Redis Cluster slot unless key itself holds braces).
 * A worker renews the leases of its running steps well before they expire
 * and removes them when the steps end; the lease of a worker that died
 * expires and frees its slot. */
#ifndef BT_CONCURRENCY_H
#define BT_CONCURRENCY_H

#include <stddef.h>
#include <stdint.h>

#include "redis.h"

/* Writes "<prefix>:cc:<key>" (the limit hash) into buf; returns buf. */
char *bt_concurrency_key(const char *prefix, const char *key, char *buf, size_t n);
/* Writes "{<prefix>:cc:<key>}:holders" (the leases) into buf; returns buf. */
char *bt_concurrency_holders_key(const char *prefix, const char *key, char *buf,
                                 size_t n);

/* Queues one acquire of a lease of lease_ms for holder (unique per attempt
 * and worker; acquiring again what holder holds succeeds and renews it) into
 * r's pipeline. The hash gets default_limit (<= 0: no limit) when it has no
 * limit. Returns 0 or BT_ENOMEM. */
int bt_concurrency_append_acquire(struct bt_redis *r, const char *prefix, const char *key,
                                  int default_limit, const char *holder,
                                  int64_t lease_ms);
/* The acquire's reply (NULL: Redis unreachable): 0 when the lease is held,
 * -1 when the key has no limit (nothing to release), else the ms after which
 * asking again may succeed (a short wait when Redis is unreachable, so the
 * limit still holds). */
int64_t bt_concurrency_wait(const redisReply *reply);

/* Queues the renewal of holder's lease to lease_ms from now. Its reply is
 * the integer 1, or 0 when the lease had expired (its slot may be taken).
 * Returns 0 or BT_ENOMEM. */
int bt_concurrency_append_renew(struct bt_redis *r, const char *prefix, const char *key,
                                const char *holder, int64_t lease_ms);
/* Queues the release of holder's lease (ZREM; a lease not held is a no-op).
 * Returns 0 or BT_ENOMEM. */
int bt_concurrency_append_release(struct bt_redis *r, const char *prefix, const char *key,
                                  const char *holder);

#endif
