/* Which fetched tasks a previous owner of their partition may have taken
 * already: those below the partition's end when this consumer first fetched
 * from it (what was waiting when it got the partition; a worker that died
 * or lost the partition left them uncommitted). Only those carry a taker to
 * take_task.lua, which counts the takers that lost an attempt: in steady
 * flow no task pays for the marks. Consumer thread only. */
#ifndef BT_REDELIVERED_H
#define BT_REDELIVERED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <librdkafka/rdkafka.h>

struct bt_redelivered {
    struct bt_redelivered_part {
        char *topic;
        int32_t partition;
        int64_t below; /* the partition's end at the first fetch here */
    } * parts;
    size_t n, cap;
};

/* Whether rkm (fetched by rk) may have been taken by a previous owner. A
 * partition whose end is not known yet counts as all maybe. */
bool bt_redelivered_maybe(struct bt_redelivered *r, rd_kafka_t *rk,
                          const rd_kafka_message_t *rkm);
/* The partitions of parts changed hands (revoked or assigned): their ends
 * are read again at the next fetch. */
void bt_redelivered_forget(struct bt_redelivered *r,
                           const rd_kafka_topic_partition_list_t *parts);
void bt_redelivered_release(struct bt_redelivered *r);

#endif
