/* Readiness of this process: whether it can do its work now, as GET /readyz
 * answers it. Ready means Redis and Kafka were reached and were not lost
 * since, and every consumer group member of the process has its assignment.
 *
 * The state is process-wide, like the log level: the layers that see each
 * dependency (redis.c, kafka.c) hold no handle through which to pass it, and a
 * process has one readiness. Each layer reports what it just saw from the code
 * path that saw it (a connection made or dropped, a rebalance callback, the
 * brokers' state in librdkafka's statistics); nothing is polled for a probe.
 *
 * Thread safety: every function may be called from any thread. Reporting a
 * state the process is already in is a load, not a store, so hot paths may
 * report each event. */
#ifndef BT_HEALTH_H
#define BT_HEALTH_H

#include <stdbool.h>
#include <stddef.h>

enum bt_health_dep { BT_HEALTH_REDIS, BT_HEALTH_KAFKA };

/* Records the state of dep: why NULL means just reached, else why it is not
 * usable, one short lowercase phrase ("redis unreachable"). why is borrowed
 * for the life of the process: pass a string literal. Before the first
 * report a dependency counts as not reached yet. */
void bt_health_set(enum bt_health_dep dep, const char *why);

/* Records whether the group consumer (any pointer naming it, an rd_kafka_t)
 * holds its assignment: false from its creation and while a rebalance took
 * its partitions away, true once the group gave it its share, which may be
 * no partition at all. The first report registers it; consumers are expected
 * to live as long as the process (a closing consumer reports false, which is
 * right for a process that stops). At most BT_HEALTH_MAX_CONSUMERS are
 * watched; more are ignored. */
#define BT_HEALTH_MAX_CONSUMERS 128
void bt_health_consumer(const void *consumer, bool assigned);

/* Records that the process can do none of its work any more and will not
 * by itself (why: a string literal), or that it can again (NULL): GET
 * /healthz then answers 503 with why, for a liveness probe to restart it. */
void bt_health_stuck(const char *why);
/* False, with why (size n), while the process says it is stuck. */
bool bt_health_alive(char *why, size_t n);

/* True when the process is ready. Otherwise false, with the first reason
 * found written to why (size n, always NUL-terminated): "redis unreachable",
 * "kafka not reached yet", "waiting for partitions: 1 of 3 consumers". */
bool bt_health_ready(char *why, size_t n);

#endif
