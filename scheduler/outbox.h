/* Re-sending commands that a worker committed to its outbox but did not get
 * onto Kafka (it died in between, and no later event made another worker
 * reload the instance). */
#ifndef BT_SCHED_OUTBOX_H
#define BT_SCHED_OUTBOX_H

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "store.h"

/* Re-sends the outbox of instances whose oldest unsent command is older than
 * grace_ms. Returns how many commands were sent, or BT_EAGAIN. */
int bt_outbox_resend(const struct bt_config *cfg, struct bt_store *store, rd_kafka_t *rk,
                     int64_t grace_ms);

#endif
