/* A new Kafka cluster under the same Redis (`baton dev` restarted: its
 * embedded cluster lives in its process; or a move to another cluster)
 * has none of the old one's messages: the tasks of attempts no worker took
 * yet, the outcomes not applied yet. Their timers would bring them back,
 * but a task's timer allows the wait for a worker (--schedule-to-start-ms,
 * 24 h). So a scheduler that finds the cluster id changed since the last
 * one Redis saw moves every activity timeout timer to now: the attempts
 * time out at once and are retried on the new cluster (at least once, as
 * after any crash). One scheduler does it: the one whose GETSET saw the
 * old id. `baton dev` names each run (BATON_DEV_EPOCH, added to the id). */
#ifndef BT_KAFKA_CHANGE_H
#define BT_KAFKA_CHANGE_H

#include <librdkafka/rdkafka.h>

#include "store.h"

/* Compares rk's cluster id with the one Redis holds, records it, and when
 * it changed times out the activity attempts in flight. Returns how many
 * timers it moved, or -1 when Kafka or Redis did not answer (logged). */
long bt_kafka_change_check(struct bt_store *store, rd_kafka_t *rk);

#endif
