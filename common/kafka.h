/* The Kafka layer: producers and consumers built from bt_config, with the
 * settings baton needs (manual offset commits, delivery reports, low latency)
 * and every `kafka.*` property passed through to librdkafka unchanged, so
 * SASL/TLS settings just work. librdkafka's own API stays visible: this layer
 * only builds handles and tracks deliveries; use rd_kafka_* for the rest. */
#ifndef BT_KAFKA_H
#define BT_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <librdkafka/rdkafka.h>

#include "config.h"

/* Counts the messages of one batch that still await their delivery report,
 * and the first delivery error. Embed it; bt_kafka_wait() polls until zero.
 * It must stay valid until pending is 0, also after BT_ETIMEDOUT: each queued
 * message points at it. Reports may be served by any thread polling the
 * producer; the fields are updated atomically, so read them after
 * bt_kafka_wait() returns. */
struct bt_kafka_batch {
    int pending;             /* messages produced, not yet reported */
    int failed;              /* messages whose delivery failed for good */
    rd_kafka_resp_err_t err; /* first failure */
};

/* Sends the logs and errors of the handle conf will build through bt_log, as
 * every handle built here does; for handles built elsewhere (`baton dev`'s
 * cluster host), which would else print plain text on stderr. */
void bt_kafka_conf_log(rd_kafka_conf_t *conf);

/* Names a topic: "<prefix>.<suffix>" ("baton.events", "baton.tasks.default").
 * Writes into buf (size n) and returns buf. */
char *bt_kafka_topic(const struct bt_config *cfg, const char *suffix, char *buf,
                     size_t n);

/* A producer tuned for low latency (linger.ms=0 unless overridden) with
 * idempotence off (baton dedups by ids; the mock cluster lacks it). Each
 * cfg->kafka property is applied last, overriding ours. It reports whether
 * the brokers are up to the process's readiness (health.h) from its
 * statistics, every 5 s: poll it regularly, as its delivery reports need
 * anyway. Returns a new handle, caller frees with rd_kafka_destroy() after
 * rd_kafka_flush(); NULL with errstr filled when a property is rejected. */
rd_kafka_t *bt_kafka_producer_new(const struct bt_config *cfg, char *errstr,
                                  size_t errstr_size);

/* Produces one message (payload and key are copied) that counts in batch:
 * batch->pending grows now and shrinks when its delivery report is served by
 * rd_kafka_poll()/bt_kafka_wait(). batch may be NULL (fire and forget).
 * Returns 0, or BT_EAGAIN when the local queue is full after waiting for it
 * to drain (up to 1 s), BT_EINVAL for an unknown topic name, or BT_ETOOBIG
 * when the message exceeds message.max.bytes (retrying cannot help). */
int bt_kafka_produce(rd_kafka_t *rk, const char *topic, const void *key, size_t keylen,
                     const void *payload, size_t len, struct bt_kafka_batch *batch);

/* Serves delivery reports until batch->pending is 0 or timeout_ms passes
 * (timeout_ms < 0: no limit; 0: serve what is ready, once).
 * Returns 0 when everything was delivered, BT_EAGAIN when some delivery failed
 * (batch->err says why) or BT_ETIMEDOUT. */
int bt_kafka_wait(rd_kafka_t *rk, struct bt_kafka_batch *batch, int timeout_ms);

/* A consumer in group `group` with auto-commit off (offsets are committed by
 * the caller after the work they cover is durable), auto.offset.reset=earliest,
 * fetch.wait.max.ms=1 and, when cfg->embedded (the brokers are `baton dev`'s mock
 * cluster), session.timeout.ms=4000 / heartbeat.interval.ms=300, else 10000 / 1000
 * and the cooperative-sticky protocol (see kafka.c on churn). rebalance_cb
 * may be NULL; when given it must take and give back partitions with
 * bt_kafka_assign / bt_kafka_unassign
 * (it is called from rd_kafka_consumer_poll), and the process is not ready
 * (health.h) while this consumer waits for its assignment. opaque is passed
 * to it.
 * Returns a new handle: rd_kafka_consumer_close() then rd_kafka_destroy(). */
rd_kafka_t *bt_kafka_consumer_new(
    const struct bt_config *cfg, const char *group,
    void (*rebalance_cb)(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque),
    void *opaque, char *errstr, size_t errstr_size);

/* In a rebalance callback: takes the partitions given (adds them, with the
 * cooperative protocol or a manual consumer) or gives back those revoked
 * (all of them, with the eager protocol), as the group's protocol wants. */
void bt_kafka_assign(rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *parts);
/* Marks rk (on) as a consumer that assigns its partitions itself, one by one,
 * without subscribing (partition leases), or forgets it (off, before it is
 * destroyed). Up to 256 at once. */
void bt_kafka_set_manual(const rd_kafka_t *rk, bool on);

/* Messages on parts past where a consumer of rk's group reads next: the
 * offset each element of parts holds (a position), else the group's
 * committed offset, else the partition's first. Each look at Kafka waits
 * timeout_ms at most. strict: -1 when a look fails; else a partition that
 * cannot be looked at counts 0, and one whose committed offset cannot be
 * read counts from its first. */
int64_t bt_kafka_waiting(rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *parts,
                         int timeout_ms, bool strict);
void bt_kafka_unassign(rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *parts);

/* Subscribes to topics[0..n). Returns 0 or BT_EINVAL. */
int bt_kafka_subscribe(rd_kafka_t *rk, const char *const *topics, size_t n);

#endif
