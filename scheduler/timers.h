/* Firing due timers: claim them atomically in Redis, produce their `timer`
 * events, and release their leases once Kafka confirmed delivery. Claims do
 * not wait for the deliveries of earlier ones: a claimed timer is leased, so
 * no claim takes it again until its lease expires. */
#ifndef BT_SCHED_TIMERS_H
#define BT_SCHED_TIMERS_H

#include <stdbool.h>
#include <stdint.h>
#include <librdkafka/rdkafka.h>

#include "config.h"
#include "metrics.h"
#include "shard_lease.h"
#include "store.h"

struct bt_timer_stats {
    uint64_t fired;
    int64_t late_ms_max; /* worst lateness seen: fire time - due time */
    uint64_t late_ms_sum;
    struct bt_series *lateness; /* histogram (seconds) of each fired timer; NULL: none */
};

struct bt_timers;

/* cfg, store, lease (which shards to claim in), rk and stats are borrowed
 * and must outlive the handle. NULL when out of memory. */
struct bt_timers *bt_timers_new(const struct bt_config *cfg, struct bt_store *store,
                                const struct bt_shard_lease *lease, rd_kafka_t *rk,
                                struct bt_timer_stats *stats);
/* Releases the leases of the timers whose events were delivered since the
 * last call, and fires what is due now (at most one batch), in one round trip.
 * Returns how many fired (>= 0) or BT_EAGAIN when Redis or Kafka is
 * unreachable (leases then expire and the timers fire later, here or
 * elsewhere). Serve delivery reports with rd_kafka_poll between calls. */
int bt_timers_fire(struct bt_timers *t);
/* The earliest due time or lease expiry (wall ms) left after the last claim
 * in the shards held, 0 when there was none: when to claim again if nothing
 * else happens. */
int64_t bt_timers_next(const struct bt_timers *t);
/* Whether fired events still wait for their delivery reports (their leases
 * go at the next bt_timers_fire after them). */
bool bt_timers_in_flight(const struct bt_timers *t);
/* Waits (up to timeout_ms) for the events in flight, releases their leases,
 * and frees the handle. NULL is a no-op. */
void bt_timers_destroy(struct bt_timers *t, int timeout_ms);

/* Timers waiting to fire (due or not, leased ones left out): one ZCARD.
 * Returns the count or BT_EAGAIN. */
int64_t bt_timers_pending(struct bt_store *store);

#endif
