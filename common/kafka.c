/* The Kafka layer: builds librdkafka producers and consumers from bt_config
 * (our settings first, the operator's kafka.* properties last) and counts
 * delivery reports per batch, so a caller commits an offset only after the
 * messages it produced for it are on the brokers. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <jansson.h>

#include "clock.h"
#include "err.h"
#include "health.h"
#include "kafka.h"
#include "log.h"

struct prop {
    const char *name;
    const char *value; /* NULL: leave librdkafka's default */
};

/* Called from librdkafka's threads; bt_log writes each line with one write(2). */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    enum bt_log_level lvl;

    /* syslog levels: 0-3 emerg..err, 4 warning, 5 notice, 6 info, 7 debug */
    if (level <= 3)
        lvl = BT_LOG_ERROR;
    else if (level == 4)
        lvl = BT_LOG_WARN;
    else if (level <= 6)
        lvl = BT_LOG_INFO;
    else
        lvl = BT_LOG_DEBUG;
    bt_log(lvl, "kafka: %s facility=%s client=%s", buf, fac, rd_kafka_name(rk));
}

/* Served by rd_kafka_poll() (a consumer gets its errors as messages instead).
 * Setting it stops librdkafka from logging each error event a second time:
 * the cause of a transient error already went through log_cb. */
static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    char why[512];
    enum bt_log_level lvl = BT_LOG_DEBUG;

    (void)opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        err = rd_kafka_fatal_error(rk, why, sizeof(why));
        reason = why;
        lvl = BT_LOG_ERROR;
        bt_health_set(BT_HEALTH_KAFKA, "kafka fatal error");
    } else if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        lvl = BT_LOG_WARN;
        bt_health_set(BT_HEALTH_KAFKA, "kafka brokers down");
    }
    bt_log(lvl, "kafka error: %s error=%s client=%s", reason,
           rd_kafka_err2name((rd_kafka_resp_err_t)err), rd_kafka_name(rk));
}

/* librdkafka's statistics, every statistics.interval.ms, served by
 * rd_kafka_poll(): only the brokers' connection states are read. Kafka counts
 * as reached while one broker is up; ALL_BROKERS_DOWN tells it sooner. */
static int stats_cb(rd_kafka_t *rk, char *json, size_t json_len, void *opaque)
{
    json_t *root = json_loadb(json, json_len, 0, NULL), *broker;
    const char *name, *state;
    bool up = false;

    (void)rk;
    (void)opaque;
    json_object_foreach(json_object_get(root, "brokers"), name, broker)
    {
        state = json_string_value(json_object_get(broker, "state"));
        up |= state && !strcmp(state, "UP");
    }
    if (root)
        bt_health_set(BT_HEALTH_KAFKA, up ? NULL : "kafka brokers down");
    json_decref(root);
    return 0; /* librdkafka frees json */
}

void bt_kafka_conf_log(rd_kafka_conf_t *conf)
{
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
}

static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value,
                    char *errstr, size_t errstr_size)
{
    char why[512];

    if (rd_kafka_conf_set(conf, name, value, why, sizeof(why)) == RD_KAFKA_CONF_OK)
        return 0;
    snprintf(errstr, errstr_size, "kafka property %s: %s", name, why);
    return BT_EINVAL;
}

/* Whether property name is for the other kind of client than this one
 * (librdkafka's consumer-only and producer-only properties): the user's
 * properties go to every client of a process, and librdkafka warns about
 * each one a client ignores. */
static bool other_role(const char *name, bool consumer)
{
    static const char *const consumer_only[] = {"fetch.",
                                                "group.",
                                                "session.timeout.ms",
                                                "heartbeat.interval.ms",
                                                "auto.offset.reset",
                                                "enable.auto.",
                                                "auto.commit.",
                                                "partition.assignment.strategy",
                                                "max.poll.interval.ms",
                                                "isolation.level",
                                                "queued.min.messages",
                                                "queued.max.messages.kbytes",
                                                "check.crcs",
                                                "max.partition.fetch.bytes"};
    static const char *const producer_only[] = {"linger.ms",
                                                "queue.buffering.",
                                                "acks",
                                                "request.required.acks",
                                                "message.timeout.ms",
                                                "delivery.timeout.ms",
                                                "batch.",
                                                "enable.idempotence",
                                                "compression.",
                                                "retries",
                                                "message.send.max.retries",
                                                "transactional.id",
                                                "sticky.partitioning.linger.ms"};
    const char *const *list = consumer ? producer_only : consumer_only;
    size_t n = consumer ? sizeof(producer_only) / sizeof(producer_only[0])
                        : sizeof(consumer_only) / sizeof(consumer_only[0]);

    for (size_t i = 0; i < n; i++)
        if (!strncmp(name, list[i], strlen(list[i])))
            return true;
    return false;
}

/* cfg->kafka entries are "name=value"; applied after ours so they win,
 * each to the kind of client it is for. */
static int conf_apply_cfg(rd_kafka_conf_t *conf, const struct bt_config *cfg,
                          bool consumer, char *errstr, size_t errstr_size)
{
    for (size_t i = 0; i < cfg->n_kafka; i++) {
        const char *prop = cfg->kafka[i], *eq = strchr(prop, '=');
        char name[256];
        size_t len = eq ? (size_t)(eq - prop) : 0;

        if (len == 0 || len >= sizeof(name)) {
            snprintf(errstr, errstr_size, "kafka property \"%s\": expected name=value",
                     prop);
            return BT_EINVAL;
        }
        memcpy(name, prop, len);
        name[len] = '\0';
        if (other_role(name, consumer))
            continue;
        if (conf_set(conf, name, eq + 1, errstr, errstr_size))
            return BT_EINVAL;
    }
    return 0;
}

/* Returns a new conf (caller passes it to rd_kafka_new or destroys it), or NULL
 * with errstr filled. */
static rd_kafka_conf_t *conf_new(const struct bt_config *cfg, const struct prop *ours,
                                 size_t n_ours, bool consumer, char *errstr,
                                 size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    bt_kafka_conf_log(conf);
    if (conf_set(conf, "bootstrap.servers", cfg->brokers, errstr, errstr_size))
        goto fail;
    for (size_t i = 0; i < n_ours; i++)
        if (ours[i].value &&
            conf_set(conf, ours[i].name, ours[i].value, errstr, errstr_size))
            goto fail;
    if (conf_apply_cfg(conf, cfg, consumer, errstr, errstr_size))
        goto fail;
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

char *bt_kafka_topic(const struct bt_config *cfg, const char *suffix, char *buf, size_t n)
{
    size_t pl = strlen(cfg->prefix), sl = strlen(suffix);

    if (pl + sl + 1 >= n) { /* on every message's path: printf only to cut */
        snprintf(buf, n, "%s.%s", cfg->prefix, suffix);
        return buf;
    }
    memcpy(buf, cfg->prefix, pl);
    buf[pl] = '.';
    memcpy(buf + pl + 1, suffix, sl + 1);
    return buf;
}

/* Served by whichever thread polls the producer, which need not be the thread
 * that waits on the batch: hence the atomics. pending drops last, with release
 * order, so a waiter that sees it reach 0 also sees failed and err. */
static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    struct bt_kafka_batch *batch = rkm->_private;
    rd_kafka_resp_err_t none = RD_KAFKA_RESP_ERR_NO_ERROR;

    (void)rk;
    (void)opaque;
    if (!batch) {
        if (rkm->err)
            bt_log(BT_LOG_WARN, "kafka delivery failed: %s topic=%s",
                   rd_kafka_err2str(rkm->err), rd_kafka_topic_name(rkm->rkt));
        return;
    }
    if (rkm->err) {
        __atomic_compare_exchange_n(&batch->err, &none, rkm->err, false, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED);
        __atomic_fetch_add(&batch->failed, 1, __ATOMIC_RELAXED);
    }
    __atomic_fetch_sub(&batch->pending, 1, __ATOMIC_RELEASE);
}

/* The first message to a topic waits for that topic's metadata, which costs
 * a second on the first step of a fresh process: fetch it for every topic
 * now. Best effort: an unreachable cluster is the first produce's business. */
static void warm_metadata(rd_kafka_t *rk)
{
    const struct rd_kafka_metadata *md = NULL;

    if (rd_kafka_metadata(rk, 1, NULL, &md, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_metadata_destroy(md);
        bt_health_set(BT_HEALTH_KAFKA, NULL);
    }
}

rd_kafka_t *bt_kafka_producer_new(const struct bt_config *cfg, char *errstr,
                                  size_t errstr_size)
{
    static const struct prop ours[] = {
        /* send at once: a step waits on each hop, and messages queued while a
         * request is in flight are still batched (bench: p50 23.7 -> 16.4 ms) */
        {"linger.ms", "0"},
        /* baton drops duplicates by ids; the mock cluster lacks idempotence */
        {"enable.idempotence", "false"},
        /* a worker produces a whole outbox before it waits for the reports */
        {"queue.buffering.max.messages", "1000000"},
        /* the brokers' state for /readyz (stats_cb): a JSON to read every 5 s
         * (35 KB with five topics of 8 partitions); the producer is polled
         * anyway, for its delivery reports */
        {"statistics.interval.ms", "5000"},
    };
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;

    conf =
        conf_new(cfg, ours, sizeof(ours) / sizeof(ours[0]), false, errstr, errstr_size);
    if (!conf)
        return NULL;
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    rd_kafka_conf_set_stats_cb(conf, stats_cb);
    if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size))) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    warm_metadata(rk);
    return rk;
}

int bt_kafka_produce(rd_kafka_t *rk, const char *topic, const void *key, size_t keylen,
                     const void *payload, size_t len, struct bt_kafka_batch *batch)
{
    int64_t deadline = bt_clock_mono_ms() + 1000;
    rd_kafka_resp_err_t err;
    int ret = 0;

    /* counted before the call: another thread may serve the report at once */
    if (batch)
        __atomic_fetch_add(&batch->pending, 1, __ATOMIC_RELAXED);
    for (;;) {
        err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_KEY(key, keylen),
                                RD_KAFKA_V_VALUE((void *)(uintptr_t)payload, len),
                                RD_KAFKA_V_OPAQUE(batch), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || bt_clock_mono_ms() >= deadline)
            break;
        /* serving delivery reports is what makes room in the queue */
        rd_kafka_poll(rk, 10);
    }
    if (!err)
        goto out;
    if (batch)
        __atomic_fetch_sub(&batch->pending, 1, __ATOMIC_RELEASE);
    bt_log(BT_LOG_WARN, "cannot produce: %s topic=%s", rd_kafka_err2str(err), topic);
    switch (err) {
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
        ret = BT_EINVAL;
        break;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
        ret = BT_ETOOBIG;
        break;
    default:
        ret = BT_EAGAIN;
        break;
    }
out:
    return ret;
}

int bt_kafka_wait(rd_kafka_t *rk, struct bt_kafka_batch *batch, int timeout_ms)
{
    int64_t deadline = bt_clock_mono_ms() + timeout_ms, left;

    while (__atomic_load_n(&batch->pending, __ATOMIC_ACQUIRE) > 0) {
        left = timeout_ms < 0 ? 10 : deadline - bt_clock_mono_ms();
        /* short slices: another thread polling this producer may serve our reports */
        rd_kafka_poll(rk, left <= 0 ? 0 : left < 10 ? (int)left : 10);
        if (left <= 0 && __atomic_load_n(&batch->pending, __ATOMIC_ACQUIRE) > 0)
            return BT_ETIMEDOUT;
    }
    return __atomic_load_n(&batch->failed, __ATOMIC_RELAXED) ? BT_EAGAIN : 0;
}

/* Static membership (--member): the process's group members are numbered in
 * the order they are made, which is the same at every start of one
 * configuration, so each takes back its own partitions after a restart. The
 * other consumers (readers without a group role) stay dynamic. */
static int set_member(rd_kafka_conf_t *conf, const char *member, char *errstr,
                      size_t errstr_size)
{
    static atomic_int made;
    char id[256];

    snprintf(id, sizeof(id), "%s-%d", member, atomic_fetch_add(&made, 1));
    if (rd_kafka_conf_set(conf, "group.instance.id", id, errstr, errstr_size) !=
        RD_KAFKA_CONF_OK)
        return BT_EINVAL;
    return 0;
}

rd_kafka_t *bt_kafka_consumer_new(
    const struct bt_config *cfg, const char *group,
    void (*rebalance_cb)(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque),
    void *opaque, char *errstr, size_t errstr_size)
{
    /* Churn (docs/reliability.md, measured with a worker of three killed
     * every 4 s): a dead worker's partitions wait until the group evicts it
     * (session.timeout.ms) and the embedded cluster completes a rebalance
     * session.timeout.ms - 1000 after it starts, so every kill stops the
     * whole group for about twice the session: 6 s sessions left it without
     * progress for up to 30-33 s, 3 s ones for 7-12 s. The floor: the
     * embedded coordinator answers a new group's first join 3 s after it,
     * and checks sessions once a second without counting a pending join as
     * a sign of life. With 3 s sessions that check and the answer were due
     * in the same instant; when the check ran first it dropped the member
     * and its join was never answered (a worker without workflow partitions
     * for the 30 s of a test, seen in CI); 2 s sessions never formed a
     * group. 4 s gives the first join the 1 s margin every later join has
     * (session - 1 s). Real brokers rebalance as soon as every member
     * rejoined; there 10 s sessions (librdkafka: 45 s) and the cooperative
     * protocol, which leaves the surviving workers their partitions during a
     * rebalance. The embedded cluster keeps the eager protocol: cooperative
     * gained nothing there. */
    const struct prop ours[] = {
        {"group.id", group},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "earliest"},
        /* the mock cluster answers an empty fetch only after this wait, even
         * when a message arrives meanwhile (baton dev sets 20 ms for its
         * stack, config.h); a real broker answers as soon as there is data,
         * so it may wait longer without polling */
        {"fetch.wait.max.ms", cfg->embedded ? "1" : "100"},
        {"fetch.error.backoff.ms", "10"},
        {"session.timeout.ms", cfg->embedded ? "4000" : "10000"},
        {"heartbeat.interval.ms", cfg->embedded ? "300" : "1000"},
        {"partition.assignment.strategy", cfg->embedded ? NULL : "cooperative-sticky"},
        /* a worker for a queue `baton dev` was not told about brings its
         * topics along (real Kafka: create them up front) */
        {"allow.auto.create.topics", cfg->embedded ? "true" : NULL},
    };
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;

    BT_ASSERT(group);
    conf = conf_new(cfg, ours, sizeof(ours) / sizeof(ours[0]), true, errstr, errstr_size);
    if (!conf)
        return NULL;
    if (rebalance_cb && cfg->member && *cfg->member &&
        set_member(conf, cfg->member, errstr, errstr_size)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    if (rebalance_cb)
        rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_opaque(conf, opaque);
    if (!(rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size))) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    /* one queue: rd_kafka_consumer_poll serves messages, errors and rebalances */
    rd_kafka_poll_set_consumer(rk);
    if (rebalance_cb) /* a group member: not ready until it has its share */
        bt_health_consumer(rk, false);
    return rk;
}

/* Consumers that assign their partitions themselves (bt_kafka_set_manual). */
#define MAX_MANUAL 256
static pthread_mutex_t manual_lock = PTHREAD_MUTEX_INITIALIZER;
static const rd_kafka_t *manual_set[MAX_MANUAL];

void bt_kafka_set_manual(const rd_kafka_t *rk, bool on)
{
    pthread_mutex_lock(&manual_lock);
    for (int i = 0; i < MAX_MANUAL; i++)
        if (manual_set[i] == (on ? NULL : rk)) {
            manual_set[i] = on ? rk : NULL;
            break;
        }
    pthread_mutex_unlock(&manual_lock);
}

static bool manual(const rd_kafka_t *rk)
{
    bool found = false;

    pthread_mutex_lock(&manual_lock);
    for (int i = 0; i < MAX_MANUAL && !found; i++)
        found = manual_set[i] == rk;
    pthread_mutex_unlock(&manual_lock);
    return found;
}

/* Whether the consumer takes partitions one by one: it assigns them itself
 * (partition leases), or its group is cooperative (cooperative-sticky, the
 * only cooperative strategy; librdkafka refuses to mix it with eager ones). Read from its
 * own settings, not asked of the group's thread with rd_kafka_rebalance_protocol():
 * inside a revoke that rd_kafka_consumer_close runs, that call can wait for an answer
 * that never comes (seen as a test that hung in the close). */
static bool cooperative(rd_kafka_t *rk)
{
    char strategy[256];
    size_t n = sizeof(strategy);

    if (manual(rk))
        return true;
    return rd_kafka_conf_get(rd_kafka_conf(rk), "partition.assignment.strategy", strategy,
                             &n) == RD_KAFKA_CONF_OK &&
           strstr(strategy, "cooperative") != NULL;
}

static void assign_error(rd_kafka_error_t *error, const char *what)
{
    if (!error)
        return;
    bt_log(BT_LOG_WARN, "cannot %s partitions: %s", what, rd_kafka_error_string(error));
    rd_kafka_error_destroy(error);
}

int64_t bt_kafka_waiting(rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *parts,
                         int timeout_ms, bool strict)
{
    rd_kafka_topic_partition_list_t *committed =
        rd_kafka_topic_partition_list_copy(parts);
    int64_t total = 0;

    if (rd_kafka_committed(rk, committed, timeout_ms)) {
        rd_kafka_topic_partition_list_destroy(committed);
        if (strict)
            return -1;
        committed = NULL; /* Kafka away */
    }
    for (int i = 0; i < parts->cnt && total >= 0; i++) {
        const rd_kafka_topic_partition_t *p = &parts->elems[i];
        int64_t low, high, from = p->offset;
        if (rd_kafka_query_watermark_offsets(rk, p->topic, p->partition, &low, &high,
                                             timeout_ms)) {
            total = strict ? -1 : total;
            continue;
        }
        if (from < 0 && committed)
            from = committed->elems[i].offset;
        if (from < 0) /* nothing committed: auto.offset.reset=earliest */
            from = low;
        if (high > from)
            total += high - from;
    }
    if (committed)
        rd_kafka_topic_partition_list_destroy(committed);
    return total;
}

void bt_kafka_assign(rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *parts)
{
    if (cooperative(rk))
        assign_error(rd_kafka_incremental_assign(rk, parts), "take");
    else
        rd_kafka_assign(rk, parts);
    /* the group coordinator answered: Kafka is there */
    bt_health_set(BT_HEALTH_KAFKA, NULL);
    bt_health_consumer(rk, true);
}

void bt_kafka_unassign(rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *parts)
{
    /* an eager revoke takes every partition until the next assignment; a
     * cooperative one keeps the member in the group with the rest, unless
     * the group lost it */
    rd_kafka_error_t *error;

    if (!cooperative(rk) || rd_kafka_assignment_lost(rk))
        bt_health_consumer(rk, false);
    if (!cooperative(rk)) {
        rd_kafka_assign(rk, NULL);
        return;
    }
    /* a closing consumer's group refuses the incremental form: the plain
     * assign, always allowed, empties the assignment then */
    if ((error = rd_kafka_incremental_unassign(rk, parts))) {
        rd_kafka_error_destroy(error);
        rd_kafka_assign(rk, NULL);
    }
}

int bt_kafka_subscribe(rd_kafka_t *rk, const char *const *topics, size_t n)
{
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new((int)n);
    rd_kafka_resp_err_t err;

    for (size_t i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(parts, topics[i], RD_KAFKA_PARTITION_UA);
    err = rd_kafka_subscribe(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (err) {
        bt_log(BT_LOG_ERROR, "cannot subscribe: %s topics=%zu", rd_kafka_err2str(err), n);
        return BT_EINVAL;
    }
    return 0;
}
