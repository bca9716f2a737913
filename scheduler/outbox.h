/* Re-sending commands that a worker committed to its outbox but did not get
 * onto Kafka (it died in between, and no later event made another worker
 * reload the instance). */
#ifndef BT_SCHED_OUTBOX_H
#define BT_SCHED_OUTBOX_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>

#include "config.h"
#include "shard_lease.h"
#include "store.h"

/* Up to this many index entries per outbox_sweep.lua call: Redis runs
 * nothing else meanwhile. */
#define BT_OUTBOX_SWEEP_LIMIT 256

/* An eager task's worker is gone when its heartbeat (alive.h) is missing
 * at looks this far apart, not at the first: a heartbeat also lapses while
 * Redis is away longer than its TTL (a restart, a failover), and the worker
 * beats again within a second of its return. The first look is marked in
 * Redis (<kp>:missing:<worker>, expiring BT_OUTBOX_MISSING_TTL_MS later:
 * its age is Redis's to tell, whichever scheduler looks next). Instances
 * left for that reason, or because the heartbeat missed two beats, are
 * looked at again BT_OUTBOX_GONE_MS later. */
#define BT_OUTBOX_GONE_MS        2000
#define BT_OUTBOX_MISSING_TTL_MS 10000

/* A result in an outbox is sent again only once it was made this long ago
 * (longer than the sweep's grace): until then its worker may still be
 * delivering it, through a Kafka outage (librdkafka keeps it queued) or a
 * Redis one (it commits when Redis is back), and a look on the results
 * topic that comes before its copy lands would send it twice. */
#define BT_OUTBOX_RESULT_GRACE_MS 30000

/* Where a sweep round is, between calls (zero it to start). */
struct bt_outbox_sweep {
    bool more;          /* more entries may be past their grace: call again soon */
    rd_kafka_t *reader; /* looks for results sent already; made when needed */
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
