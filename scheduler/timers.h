/* Firing due timers: claim them atomically in Redis, produce their `timer`
 * events, then release their leases once Kafka confirmed delivery. */
#ifndef BT_SCHED_TIMERS_H
#define BT_SCHED_TIMERS_H

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "store.h"

struct bt_timer_stats {
    uint64_t fired;
    int64_t late_ms_max; /* worst lateness seen: fire time - due time */
    uint64_t late_ms_sum;
};

/* Fires what is due now (at most one batch). Returns how many fired (>= 0)
 * or BT_EAGAIN when Redis or Kafka is unreachable (leases then expire and
 * the timers fire later, here or elsewhere). */
int bt_timers_fire(const struct bt_config *cfg, struct bt_store *store, rd_kafka_t *rk,
                   struct bt_timer_stats *stats);

#endif
