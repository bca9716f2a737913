/* Looking back on a topic: whether messages already sit on it. A worker or a
 * scheduler that finds a result in a dead worker's outbox cannot know whether
 * it was delivered before the death (the delivery report died with the
 * process); sending it again would give the instance two results. Before
 * sending such a message again, the partition its key goes to is read back,
 * newest first, to the time the message was made: an identical message found
 * there was delivered. */
#ifndef BT_LOOKBACK_H
#define BT_LOOKBACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <librdkafka/rdkafka.h>

#include "config.h"

/* One message looked for: its key and payload (borrowed), and the wall-clock
 * time (ms) it was made, before which it cannot have been produced. */
struct bt_sought {
    const char *key;
    const void *payload;
    size_t len;
    int64_t made_ms;
    bool found; /* set by bt_lookback */
};

/* A reader for bt_lookback: a consumer in no group (a group id is required
 * to build one; assign() never joins it). NULL with errstr filled.
 * rd_kafka_consumer_close() then rd_kafka_destroy(). */
rd_kafka_t *bt_lookback_reader_new(const struct bt_config *cfg, char *errstr,
                                   size_t errstr_size);

/* Sets found on each of sought[0..n) that is on topic (the full name): a
 * message with the same key and payload in the partition its key goes to
 * (the producer's partitioner, per cfg; every partition for one it does
 * not know). Reads back to a little before the oldest made_ms, at most
 * BT_LOOKBACK_MAX messages per partition. Returns 0, or BT_EAGAIN when Kafka
 * did not answer in time: what was not found then may still be there. */
int bt_lookback(rd_kafka_t *reader, const struct bt_config *cfg, const char *topic,
                struct bt_sought *sought, size_t n);

#define BT_LOOKBACK_MAX 200000

#endif
