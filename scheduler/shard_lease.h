/* Which shards of a sharded store (store.h, --redis-shards) this scheduler
 * visits: the live schedulers share them out through leases in shard 0
 * (shard_leases.lua), so that each claims the timers, sweeps the outboxes
 * and ends the retention of its part only, and Redis's work does not grow
 * with the number of schedulers. A scheduler that dies leaves its part
 * unvisited until its lease expires (BT_SHARD_LEASE_TTL_MS); one that stops
 * gives it back at once. Without shards every scheduler visits the one
 * prefix, as before: their claims keep them apart. */
#ifndef BT_SCHED_SHARD_LEASE_H
#define BT_SCHED_SHARD_LEASE_H

#include <stdbool.h>
#include <stdint.h>

#include "metrics.h"
#include "store.h"

#define BT_SHARD_LEASE_RENEW_MS 1000
#define BT_SHARD_LEASE_TTL_MS   3000

struct bt_shard_lease;

/* store is borrowed and must outlive the handle; held (a gauge of the
 * shards held; NULL: none) too. Holds nothing until the first renewal. NULL
 * when out of memory. */
struct bt_shard_lease *bt_shard_lease_new(struct bt_store *store, struct bt_series *held);
/* Renews the lease and takes this scheduler's share when a renewal is due
 * (one script). Returns 0, or BT_EAGAIN when Redis did not answer: what was
 * held is kept meanwhile (if the lease expired, others visit those shards
 * too, which is harmless). */
int bt_shard_lease_renew(struct bt_shard_lease *l);
/* Whether this scheduler visits shard. Always true without shards. */
bool bt_shard_lease_holds(const struct bt_shard_lease *l, int shard);
/* When the next renewal is due (monotonic ms); INT64_MAX without shards. */
int64_t bt_shard_lease_next(const struct bt_shard_lease *l);
/* Gives the shards back (when Redis answers) and frees the handle. NULL is a
 * no-op. */
void bt_shard_lease_destroy(struct bt_shard_lease *l);

#endif
