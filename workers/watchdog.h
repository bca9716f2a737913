/* A watchdog for a consumer of a worker role: a consumer that has messages
 * waiting on its assigned partitions but has taken none for a while is
 * stalled, whatever the cause (a fetch that never resumed after a pause or a
 * rebalance, say). It is logged, counted on /metrics
 * (baton_consumer_stalls_total) and mended by resuming its partitions and
 * assigning them again, which restarts fetching from the committed offsets
 * (what is fetched twice is dropped as a duplicate). Not thread safe: the consumer's
 * thread. */
#ifndef BT_WATCHDOG_H
#define BT_WATCHDOG_H

#include <stdbool.h>
#include <stdint.h>
#include <librdkafka/rdkafka.h>

#include "metrics.h"

struct bt_watchdog {
    const char *role; /* borrowed: "workflow" or "activity" */
    int64_t stall_ms; /* 0: off */
    uint64_t seen;    /* progress count at the last change */
    int64_t since;    /* monotonic ms of that change */
    struct bt_series *stalls;
};

/* role is borrowed (a literal); metrics may be NULL. */
void bt_watchdog_init(struct bt_watchdog *wd, const char *role, int64_t stall_ms,
                      struct bt_metrics *metrics);
/* Call every loop with a count that grows with every message taken; idle:
 * the role takes none on purpose now (its buffer is full). When the consumer
 * has taken nothing for stall_ms while messages wait on its partitions, logs
 * it, counts it and assigns the partitions again. Returns true then. Asks
 * the broker (up to 1 s) only once stall_ms has passed without progress. */
bool bt_watchdog_check(struct bt_watchdog *wd, rd_kafka_t *consumer, uint64_t progress,
                       bool idle);

#endif
