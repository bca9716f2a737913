/* A whole baton stack for one test: a redis-server, a Kafka mock cluster with
 * the test's own prefix, worker processes started from build/bin, and a
 * producer / results reader for the test itself. */
#ifndef BT_STACK_H
#define BT_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <jansson.h>
#include <hiredis/hiredis.h>

#include "harness.h"

#define BT_STACK_MAX_PROCS 8

struct bt_stack {
    struct bt_test_redis redis;       /* on a cluster: only its dir, for the logs */
    bool redis_paused;                /* SIGSTOPped by bt_stack_redis_down */
    struct bt_test_rcluster *cluster; /* set: Redis is this Redis Cluster */
    int shards;                       /* --redis-shards of the programs */
    struct bt_test_kafka kafka;
    char prefix[64];
    char env[12][512]; /* BATON_* settings for the programs */
    const char *envp[13];
    int n_env; /* the stack's own; a test's extras follow (bt_stack_setenv) */
    rd_kafka_t *producer;
    rd_kafka_t *results; /* consumer of <prefix>.results, own group */
    struct bt_redis *r;  /* the test's own connection (cluster-aware) */
    char log[320];       /* the programs' stdout/stderr */
};

/* Starts redis and the Kafka cluster (extra task queues NULL-terminated, may
 * be NULL). With BT_TEST_REDIS_CLUSTER=1 in the environment, as
 * bt_stack_start_cluster with BT_TEST_REDIS_SHARDS shards (8 when unset):
 * the same tests on a Redis Cluster; with BT_TEST_REDIS_SHARDS alone, the
 * programs told --redis-shards on one redis-server. Returns 0 or -1. */
int bt_stack_start(struct bt_stack *s, const char *const *queues);
/* One redis-server, the programs told --redis-shards shards (0: none). */
int bt_stack_start_sharded(struct bt_stack *s, const char *const *queues, int shards);
/* The same on a Redis Cluster of 3 masters, with a replica each when asked
 * (bt_test_rcluster), the programs told --redis-cluster --redis-shards
 * shards. */
int bt_stack_start_cluster(struct bt_stack *s, const char *const *queues, int shards,
                           bool replicas);
/* Sets the test's extra environment entry i (0..3) for the programs started
 * from now on: printf-style "NAME=value"; NULL drops it and those after it. */
void bt_stack_setenv(struct bt_stack *s, int i, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The key prefix of shard's keys ("<prefix>", or "<prefix>:{<shard>}" with
 * shards: store.h), into buf. */
const char *bt_stack_shard_kp(const struct bt_stack *s, int shard, char *buf, size_t n);
/* How many shard prefixes there are to visit: 1 without shards. */
int bt_stack_shard_count(const struct bt_stack *s);
/* The key prefix of the shard instance id belongs to, into buf. */
const char *bt_stack_kp_of(const struct bt_stack *s, const char *id, char *buf, size_t n);
/* How many keys match pattern, over every master; -1 when Redis does not
 * answer. */
long bt_stack_count_keys(struct bt_stack *s, const char *pattern);
/* The sum of ZCARD "<kp>:<suffix>" over the shards' prefixes (the outbox,
 * timers or retention index); -1 when Redis does not answer. */
long long bt_stack_zcard(struct bt_stack *s, const char *suffix);
/* How many instances have a key "<kp>:{<id>}<suffix>", over the shards; -1
 * when Redis does not answer. */
long bt_stack_count_instance_keys(struct bt_stack *s, const char *suffix);

/* The key of instance id with suffix as the programs name it (store.h):
 * "<prefix>[:{<shard>}]:{<id>}<suffix>", into buf. */
const char *bt_stack_key(const struct bt_stack *s, const char *id, const char *suffix,
                         char *buf, size_t n);
void bt_stack_stop(struct bt_stack *s);

/* Spawns baton-worker with the test plugin (build/plugins/<plugin>.so) and
 * extra args (NULL-terminated, may be NULL). Returns the pid or -1. */
pid_t bt_stack_worker(struct bt_stack *s, const char *plugin, const char *const *args);

/* Runs `baton args...` (NULL-terminated) against the stack and waits for it;
 * returns its exit status, its stdout and stderr in out (size n). */
int bt_stack_baton(struct bt_stack *s, char *out, size_t n, const char *const *args);
#define BT_STACK_BATON(s, out, ...)                                                      \
    bt_stack_baton((s), (out), sizeof(out), (const char *const[]){__VA_ARGS__, NULL})

/* Spawns baton-scheduler. Returns the pid or -1. */
pid_t bt_stack_scheduler(struct bt_stack *s);

/* Produces raw bytes to <prefix>.<suffix> with key and waits for delivery. */
int bt_stack_produce(struct bt_stack *s, const char *suffix, const char *key,
                     const void *payload, size_t len);
/* Produces a start event. input stolen. */
int bt_stack_start_wf(struct bt_stack *s, const char *type, const char *id,
                      json_t *input);
/* Starts chain3 instances "<prefix>-<i>" with input {"v": i} for i in
 * [from, to); asserts each start. */
void bt_stack_start_chains(struct bt_stack *s, const char *prefix, int from, int to);

/* Reads what arrived on <prefix>.<suffix> (a consumer per suffix, from the
 * beginning) for up to wait_ms, calling fn on each decoded JSON message (a
 * borrowed root); stops early when fn returns true. Returns how many were
 * read. */
int bt_stack_read(struct bt_stack *s, const char *suffix, int wait_ms,
                  bool (*fn)(const json_t *msg, void *arg), void *arg);

/* Reads everything on <prefix>.<suffix> now (up to the end of every
 * partition, or wait_ms), calling fn on each message. Returns the count. */
int bt_stack_read_all(struct bt_stack *s, const char *suffix, int wait_ms,
                      bool (*fn)(const json_t *msg, void *arg), void *arg);

/* Outcomes on <prefix>.results, deduplicated by instance id. */
struct bt_stack_results {
    int want;      /* stop once this many distinct instances reported */
    int raw;       /* messages read, duplicates included */
    int distinct;  /* distinct instances */
    json_t *by_id; /* id -> result message; caller frees with json_decref */
};
/* Reads results for up to wait_ms, from the beginning of the topic. */
void bt_stack_results(struct bt_stack *s, struct bt_stack_results *r, int want,
                      int wait_ms);

/* A reply to a Redis command on the stack's redis (hiredis format). */
redisReply *bt_stack_redis(struct bt_stack *s, const char *fmt, ...);

/* The history records of instance id (stream suffix ":history" or an
 * archived run's ":history:<n>") whose "ev" is ev (NULL: all), as a new JSON
 * array. */
json_t *bt_stack_history(struct bt_stack *s, const char *id, const char *suffix,
                         const char *ev);

/* Restarts the stack's redis-server on its port and data dir (AOF replayed)
 * and reconnects the test's own client. how: "kill" (SIGKILL) or "shutdown"
 * (SHUTDOWN, as an operator would). Returns 0 or -1. */
int bt_stack_redis_restart(struct bt_stack *s, const char *how);
/* Stops redis only (for an outage): "kill" or "shutdown"; or "pause"
 * (SIGSTOP: a hung Redis, its connections open and unanswered). */
void bt_stack_redis_down(struct bt_stack *s, const char *how);
/* Starts it again after bt_stack_redis_down (SIGCONT after a pause). Returns
 * 0 or -1. */
int bt_stack_redis_up(struct bt_stack *s);

/* Whether a live worker of the default queue said it runs workflow type
 * (its registration, which `baton start` checks). */
bool bt_stack_type_known(struct bt_stack *s, const char *type);

/* Status of instance id from Redis ("completed", ...), or "" when unknown.
 * Writes into buf. */
const char *bt_stack_status(struct bt_stack *s, const char *id, char *buf, size_t n);

#endif
