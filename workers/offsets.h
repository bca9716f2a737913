/* Offset tracking for a consumer whose messages finish out of order (the
 * activity role: attempts end when they end). Each partition's offsets are
 * kept in consume order with a done flag; the committable offset of a
 * partition is one past its longest done prefix, so a commit never passes a
 * message whose work is not finished. Not thread safe: the consumer thread's. */
#ifndef BT_OFFSETS_H
#define BT_OFFSETS_H

#include <stdint.h>
#include <librdkafka/rdkafka.h>

struct bt_offsets;

/* Returns a new tracker (bt_offsets_destroy), or NULL. */
struct bt_offsets *bt_offsets_new(void);
void bt_offsets_destroy(struct bt_offsets *o);

/* Records that the message at topic/partition/offset was consumed and is being
 * worked on. Returns its partition's generation, for bt_offsets_done. */
uint64_t bt_offsets_track(struct bt_offsets *o, const char *topic, int32_t partition,
                          int64_t offset);
/* The work on that message is finished. Ignored when it was tracked in an
 * earlier generation of its partition (revoked since: the offset is another
 * assignment's now, which may have fetched the message again). */
void bt_offsets_done(struct bt_offsets *o, const char *topic, int32_t partition,
                     int64_t offset, uint64_t generation);
/* The offsets to commit (one past each partition's done prefix) that moved
 * since the last call, as a new list (caller destroys), or NULL: none. */
rd_kafka_topic_partition_list_t *bt_offsets_take(struct bt_offsets *o);
/* Forgets the partitions of parts (revoked): tracked again later, each starts
 * a new generation. */
void bt_offsets_forget(struct bt_offsets *o,
                       const rd_kafka_topic_partition_list_t *parts);
/* Forgets every partition. */
void bt_offsets_clear(struct bt_offsets *o);

#endif
