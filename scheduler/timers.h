/* Firing due timers: claim them atomically in Redis, produce their `timer`
 * events, then release their leases once Kafka confirmed delivery. */
#ifndef BT_SCHED_TIMERS_H
#define BT_SCHED_TIMERS_H

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "metrics.h"
#include "store.h"

struct bt_timer_stats {
    uint64_t fired;
    int64_t late_ms_max; /* worst lateness seen: fire time - due time */
    uint64_t late_ms_sum;
    struct bt_series *lateness; /* histogram (seconds) of each fired timer; NULL: none */
};

/* Fires what is due now (at most one batch). Returns how many fired (>= 0)
 * or BT_EAGAIN when Redis or Kafka is unreachable (leases then expire and
 * the timers fire later, here or elsewhere). */
int bt_timers_fire(const struct bt_config *cfg, struct bt_store *store, rd_kafka_t *rk,
                   struct bt_timer_stats *stats);

/* Timers waiting to fire (due or not, leased ones left out): one ZCARD.
 * Returns the count or BT_EAGAIN. */
int64_t bt_timers_pending(struct bt_store *store);

#endif
