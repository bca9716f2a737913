/* Firing schedules (`baton schedule add`, `baton start --at`): claim the due
 * ones atomically in Redis, produce their start events, and re-arm each at
 * its next fire time once Kafka confirmed delivery.
 *
 * Redis: <kp>:schedules, a sorted set of name by next fire time (ms; +inf when
 * paused; a lease expiry while a scheduler holds it), and <kp>:schedule:<name>,
 * a hash: cron, tz, workflow, input (JSON text, optional), overlap
 * (skip|allow), paused (0|1), next (ms), last_id, last_fire, fired, skipped,
 * last_skip, error, created; one-shot schedules have once=1, id (the
 * instance id) and event (the start event `baton start` encoded) instead of
 * cron, tz and input. */
#ifndef BT_SCHED_SCHEDULES_H
#define BT_SCHED_SCHEDULES_H

#include <stdint.h>
#include <librdkafka/rdkafka.h>

#include "config.h"
#include "store.h"

struct bt_schedule_stats {
    uint64_t fired;   /* start events delivered */
    uint64_t skipped; /* fires skipped: the previous instance was still running */
    int64_t next;     /* earliest fire time or lease expiry left at the last claim
                       * (wall ms; 0: none): when to claim again if idle */
};

/* Fires the schedules due now (at most one batch). Each fire's instance id is
 * "<name>@<fire time, UTC>" (bt_cron_fire_id), or the stored id of a one-shot
 * schedule, so a fire repeated by another scheduler starts nothing new. A
 * schedule whose fires were missed (no scheduler ran) fires once for them all
 * and then follows its expression from now. Returns how many schedules were
 * handled (>= 0), or BT_EAGAIN when Redis or Kafka is unreachable (leases
 * then expire and the schedules fire later, here or elsewhere). Uses local
 * time rules (bt_cron_next): call it from one thread only. */
int bt_schedules_fire(const struct bt_config *cfg, struct bt_store *store, rd_kafka_t *rk,
                      struct bt_schedule_stats *stats);

#endif
