/* Re-sending commands that a worker committed to its outbox but did not get
 * onto Kafka (it died in between, and no later event made another worker
 * reload the instance). */
#ifndef BT_SCHED_OUTBOX_H
#define BT_SCHED_OUTBOX_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "shard_lease.h"
#include "store.h"

/* Up to this many index entries per outbox_sweep.lua call: Redis runs
 * nothing else meanwhile. */
#define BT_OUTBOX_SWEEP_LIMIT 256

/* An eager task's worker is gone when its heartbeat (alive.h) is missing
 * at looks this far apart, not at the first: a heartbeat also lapses while
 * Redis is away longer than its TTL (a restart, a failover) and the worker
 * beats again within a second of its return. Instances left for that reason
 * are looked at again this much later. */
#define BT_OUTBOX_GONE_MS 3000
#define BT_OUTBOX_MISSING 64 /* workers remembered missing at a time */

/* Where a sweep round is, between calls (zero it to start). */
struct bt_outbox_sweep {
    bool more;          /* more entries may be past their grace: call again soon */
    rd_kafka_t *reader; /* looks for results sent already; made when needed */
    struct {
        char worker[128];          /* "": a free slot */
        int64_t since_ms, seen_ms; /* monotonic: first and last look */
    } missing[BT_OUTBOX_MISSING];
};

/* One step of the sweep: drops from the outbox index up to
 * BT_OUTBOX_SWEEP_LIMIT instances older than grace_ms whose outbox is empty
 * and re-sends the commands of the others, which it claims for a grace (so
 * that another scheduler does not send them too), in each shard lease holds.
 * Returns how many commands were sent, or BT_EAGAIN. */
int bt_outbox_resend(const struct bt_config *cfg, struct bt_store *store,
                     const struct bt_shard_lease *lease, rd_kafka_t *rk, int64_t grace_ms,
                     struct bt_outbox_sweep *sw);

/* Frees what the sweep holds. */
void bt_outbox_sweep_end(struct bt_outbox_sweep *sw);

#endif
