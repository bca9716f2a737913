/* How a worker role's consumer gets its partitions. With `--assignment group`
 * it subscribes, and Kafka's group protocol shares the partitions out. With
 * `leases` (the default on `baton dev`'s embedded cluster, whose group
 * coordinator stops the whole group for seconds at every join and eviction,
 * so that no group forms while workers die every few seconds) the consumers
 * of a group share each topic's partitions through leases in Redis
 * (partition_leases.lua) and assign them themselves; offsets are still
 * committed to Kafka under the group's name. A dead consumer's partitions
 * move once its lease expires (BT_PARTLEASE_TTL_MS), while the others keep
 * reading theirs; one that stops gives them back at once. A partition has
 * one owner at a time: the old owner stops reading it and commits its
 * offsets before it gives it back. A thread of the handle's own renews the
 * membership, so a consumer busy for seconds keeps its partitions, as a
 * group member does. Not thread safe: the consumer's thread, where the
 * role's rebalance callback runs too. */
#ifndef BT_PARTLEASE_H
#define BT_PARTLEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <librdkafka/rdkafka.h>

#include "config.h"

#define BT_PARTLEASE_TTL_MS   4000
#define BT_PARTLEASE_RENEW_MS 500

typedef void bt_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                             rd_kafka_topic_partition_list_t *parts, void *opaque);

struct bt_partlease;

/* Gives consumer (made with bt_kafka_consumer_new for group) the topics'
 * partitions: subscribes in group mode (*out = NULL), else makes a lease
 * handle (*out) that moves partitions by calling cb (the role's rebalance
 * callback, with opaque) as the group would: revoke, then assign. who names
 * this consumer among the group's (unique: worker and role). Returns 0, or
 * BT_EINVAL (BT_ENOMEM) with errstr filled. */
int bt_partlease_start(const struct bt_config *cfg, rd_kafka_t *consumer,
                       const char *group, const char *const *topics, size_t n,
                       const char *who, bt_rebalance_cb *cb, void *opaque,
                       struct bt_partlease **out, char *errstr, size_t errstr_size);
/* Call every loop of the consumer's thread: renews the leases when due and
 * moves the partitions that changed hands. NULL is a no-op. */
void bt_partlease_tick(struct bt_partlease *l);
/* Revokes what the consumer holds (through cb), gives it back and frees the
 * handle; call before closing the consumer. NULL is a no-op. */
void bt_partlease_destroy(struct bt_partlease *l);

#endif
