/* Queues nobody serves. A start (or any event) produced to the events topic
 * of a queue that no live worker serves waits there, as it should: a worker
 * may come. But nothing runs it and nothing times it out, so it must not
 * wait silently. Every BT_UNSERVED_EVERY_MS, on a thread of its own (its
 * Kafka looks may take seconds; the timers must not wait for them), the
 * scheduler lists the events topics of its prefix and, for each queue
 * without a serving key (workers/alive.c), counts the events the workflow
 * group has not committed past. A queue with some waiting is logged
 * ("no live worker serves queue"), at most once a minute each, and
 * exported as baton_queue_unserved_events{queue} (0 again once it is
 * served or empty). */
#ifndef BT_SCHEDULER_UNSERVED_H
#define BT_SCHEDULER_UNSERVED_H

#include <stddef.h>

#include "config.h"
#include "metrics.h"

#define BT_UNSERVED_FIRST_MS 2000
#define BT_UNSERVED_EVERY_MS 30000

struct bt_unserved;

/* Starts the looks (cfg is copied where kept). NULL with errstr when its
 * Kafka handle or Redis connection cannot be made. */
struct bt_unserved *bt_unserved_start(const struct bt_config *cfg, struct bt_metrics *m,
                                      char *errstr, size_t errstr_size);
/* Stops the thread (within a look's Kafka timeouts) and frees. NULL: no-op. */
void bt_unserved_stop(struct bt_unserved *u);

#endif
