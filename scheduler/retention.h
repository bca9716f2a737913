/* Retention in the scheduler: runs whose retention ended are archived and
 * deleted in the background (archive.h), at most BT_RETENTION_BATCH per
 * claim and BT_RETENTION_PACE_MS between two claims, so that Redis is never
 * held for long and timers keep firing between the steps. Several
 * schedulers share the work: each run is claimed by one of them. */
#ifndef BT_SCHED_RETENTION_H
#define BT_SCHED_RETENTION_H

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "metrics.h"
#include "shard_lease.h"
#include "store.h"

/* Runs per claim (one retention_claim.lua and one retention_delete.lua
 * call each), and the pause between two claims while a backlog lasts (1 s
 * once a pass over the shards found none): up to 5,000 runs a second per
 * scheduler, above what the workers finish on one Redis (bench/README.md),
 * so that a short retention holds Redis's memory flat, while Redis does
 * other work between two batches. */
#define BT_RETENTION_BATCH   100
#define BT_RETENTION_PACE_MS 20
#define BT_RETENTION_IDLE_MS 1000

struct bt_retention_stats {
    struct bt_series *deleted;  /* counter: instances deleted; NULL: none */
    struct bt_series *archived; /* counter: runs archived and deleted */
    struct bt_series *failed;   /* counter: archives not delivered, tried again */
    struct bt_series *awaiting; /* gauge: runs whose archive awaits Kafka's word */
};

struct bt_retention;

/* cfg, store, lease (which shards to claim in), rk and stats are borrowed
 * and must outlive the handle. NULL when out of memory. */
struct bt_retention *bt_retention_new(const struct bt_config *cfg, struct bt_store *store,
                                      const struct bt_shard_lease *lease, rd_kafka_t *rk,
                                      const struct bt_retention_stats *stats);

/* One step, never blocking on Kafka: when the runs of the last claim all have
 * their delivery reports, ends their claims (deletes the delivered ones);
 * when none are in flight and the pace allows, claims the next due ones and
 * produces their archives. Serve delivery reports with rd_kafka_poll between
 * calls. Returns the runs deleted (>= 0) or BT_EAGAIN (Redis unreachable: the
 * claims hold and the step is tried again later). */
int bt_retention_step(struct bt_retention *rt);

/* When the loop should call bt_retention_step again (monotonic ms: the
 * pace after a claim, also for ending it once its reports are in; a second
 * after a failed end or a pass that found nothing), and whether delivery
 * reports are awaited (then INT64_MAX: poll Kafka within a few ms instead).
 * The loop's sleep must not outlast it. */
int64_t bt_retention_next_ms(const struct bt_retention *rt, bool *in_flight);

/* Waits up to timeout_ms for the deliveries in flight, purges the rest
 * (their runs are put back, due again 10 s later), ends the claims, and
 * frees the handle. Call it before the producer is destroyed. Runs whose
 * claims cannot be ended (Redis away) are claimed again when their lease
 * expires. NULL is a no-op. */
void bt_retention_destroy(struct bt_retention *rt, int timeout_ms);

#endif
