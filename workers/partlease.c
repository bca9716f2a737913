/* Leases in Redis, per group and topic: <kp0>:parts:{<group>:<topic>}:members
 * (who is alive, till when) and :owners (partition -> consumer), both in one
 * Redis Cluster slot, both expiring when no consumer of the group is left. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "health.h"
#include "kafka.h"
#include "log.h"
#include "lua_scripts.h"
#include "partlease.h"
#include "redis.h"
#include "store.h"

#define CATCH_UP_MS 100   /* next look while short of the share */
#define METADATA_MS 1000  /* wait for a topic's partition count */
#define RECOUNT_MS  60000 /* look again how many partitions a topic has */

struct topic {
    char name[300];
    char members[400], owners[400];
    int parts;        /* 0: not known yet */
    bool *held;       /* per partition: assigned to the consumer */
    int64_t count_ms; /* when parts was last asked for */
};

struct bt_partlease {
    rd_kafka_t *consumer;
    struct bt_store *store; /* its own connection: the role's pipelines its own */
    /* Membership is renewed by a thread of its own, as librdkafka heartbeats
     * a group member: a consumer thread busy for seconds (a batch waiting
     * for the brokers) keeps its partitions, rather than losing them while
     * its results are still on their way (a new owner would find them
     * unsent and send them again). Only a stopped or dead process loses
     * them. */
    struct bt_store *beat_store;
    pthread_t beat;
    atomic_bool stop;
    bool beating;
    bt_rebalance_cb *cb;
    void *opaque;
    char who[400];
    struct topic *topics; /* n of them */
    size_t n;
    int64_t next_ms;
    bool ready;
};

/* The topic's partition count, from the brokers (0 while it does not exist). */
static void count_partitions(struct bt_partlease *l, struct topic *t)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(l->consumer, t->name, NULL);
    int parts = 0;

    t->count_ms = bt_clock_mono_ms();
    if (!rkt)
        return;
    if (!rd_kafka_metadata(l->consumer, 0, rkt, &md, METADATA_MS) && md->topic_cnt == 1 &&
        !md->topics[0].err)
        parts = md->topics[0].partition_cnt;
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    if (parts > t->parts) { /* Kafka only adds partitions */
        bool *held = realloc(t->held, (size_t)parts * sizeof(bool));
        if (!held)
            return;
        memset(held + t->parts, 0, (size_t)(parts - t->parts) * sizeof(bool));
        t->held = held;
        t->parts = parts;
    }
}

/* One call of partition_leases.lua on store's connection; mode: "0" renew,
 * "1" leave, "2" heartbeat; given: "p,p,..." given back. */
static redisReply *call_on(struct bt_store *store, const struct bt_partlease *l,
                           const struct topic *t, const char *mode, const char *given)
{
    char ttl[16], parts[16];
    const char *argv[] = {t->members, t->owners, l->who, ttl, parts, mode, given};

    snprintf(ttl, sizeof(ttl), "%d", BT_PARTLEASE_TTL_MS);
    snprintf(parts, sizeof(parts), "%d", t->parts);
    return bt_redis_eval(bt_store_redis(store), bt_lua_partition_leases, 2, 7, argv,
                         NULL);
}

static redisReply *call(struct bt_partlease *l, const struct topic *t, bool leaving,
                        const char *given)
{
    return call_on(l->store, l, t, leaving ? "1" : "0", given);
}

/* The heartbeat thread: the membership of every topic, every renewal
 * period, until the handle is destroyed. */
static void *heartbeat(void *arg)
{
    struct bt_partlease *l = arg;

    while (!atomic_load(&l->stop)) {
        for (size_t i = 0; i < l->n && !atomic_load(&l->stop); i++)
            freeReplyObject(call_on(l->beat_store, l, &l->topics[i], "2", ""));
        for (int slept = 0; slept < BT_PARTLEASE_RENEW_MS && !atomic_load(&l->stop);
             slept += 50)
            bt_clock_sleep_ms(50);
    }
    return NULL;
}

static bool well_formed(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ARRAY && r->elements == 4 &&
           r->element[0]->type == REDIS_REPLY_ARRAY &&
           r->element[1]->type == REDIS_REPLY_ARRAY;
}

static bool listed(const redisReply *list, int p)
{
    for (size_t i = 0; i < list->elements; i++)
        if (list->element[i]->integer == p)
            return true;
    return false;
}

/* Hands parts to the role's callback, as the group would (err: assign or
 * revoke), and notes what the consumer now holds. */
static void move(struct bt_partlease *l, struct topic *t, rd_kafka_resp_err_t err,
                 rd_kafka_topic_partition_list_t *parts)
{
    if (!parts->cnt)
        return;
    bt_log(BT_LOG_INFO, "partition leases %s: topic=%s count=%d",
           err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS ? "taken" : "given up", t->name,
           parts->cnt);
    l->cb(l->consumer, err, parts, l->opaque);
    for (int i = 0; i < parts->cnt; i++)
        t->held[parts->elems[i].partition] = err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
}

/* Renews one topic's leases and moves what changed hands. Returns -1 when
 * Redis did not answer (what is held is kept meanwhile: nobody can take it
 * while Redis is away), else whether the consumer is short of its share. */
static int renew(struct bt_partlease *l, struct topic *t)
{
    redisReply *r = call(l, t, false, "");
    rd_kafka_topic_partition_list_t *give, *take;
    char given[4096] = "";
    size_t used = 0;
    int short_of;

    if (!well_formed(r)) {
        if (r && r->type == REDIS_REPLY_ERROR)
            bt_log(BT_LOG_WARN, "partition leases refused by redis: %s", r->str);
        freeReplyObject(r);
        return -1;
    }
    give = rd_kafka_topic_partition_list_new(t->parts);
    take = rd_kafka_topic_partition_list_new(t->parts);
    for (int p = 0; p < t->parts; p++) {
        bool owned = listed(r->element[0], p), surplus = listed(r->element[1], p);
        if (t->held[p] && (!owned || surplus))
            rd_kafka_topic_partition_list_add(give, t->name, p);
        else if (!t->held[p] && owned && !surplus)
            rd_kafka_topic_partition_list_add(take, t->name, p);
        if (surplus && used < sizeof(given) - 16)
            used += (size_t)snprintf(given + used, sizeof(given) - used, "%d,", p);
    }
    short_of = (int)r->element[0]->elements < r->element[3]->integer;
    freeReplyObject(r);
    move(l, t, RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS, give);
    /* stopped reading them and committed their offsets: another may take them */
    if (used)
        freeReplyObject(call(l, t, false, given));
    move(l, t, RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS, take);
    rd_kafka_topic_partition_list_destroy(give);
    rd_kafka_topic_partition_list_destroy(take);
    return short_of;
}

void bt_partlease_tick(struct bt_partlease *l)
{
    int64_t now = bt_clock_mono_ms();
    bool failed = false, short_of = false;

    if (!l || now < l->next_ms)
        return;
    for (size_t i = 0; i < l->n; i++) {
        struct topic *t = &l->topics[i];
        int rc;
        if (!t->parts || now - t->count_ms >= RECOUNT_MS)
            count_partitions(l, t);
        if (!t->parts) {
            short_of = true; /* not created yet: look again soon */
            continue;
        }
        rc = renew(l, t);
        failed |= rc < 0;
        short_of |= rc > 0;
    }
    if (!failed && !l->ready) {
        l->ready = true; /* holds its share, even when that is none */
        bt_health_consumer(l->consumer, true);
    }
    l->next_ms = bt_clock_mono_ms() + (failed     ? BT_PARTLEASE_RENEW_MS / 4
                                       : short_of ? CATCH_UP_MS
                                                  : BT_PARTLEASE_RENEW_MS);
}

static void add_topic(struct bt_partlease *l, const char *group, const char *name)
{
    struct topic *t = &l->topics[l->n++];
    const char *kp0 = bt_store_schedule_prefix(l->store);

    snprintf(t->name, sizeof(t->name), "%s", name);
    snprintf(t->members, sizeof(t->members), "%s:parts:{%s:%s}:members", kp0, group,
             name);
    snprintf(t->owners, sizeof(t->owners), "%s:parts:{%s:%s}:owners", kp0, group, name);
}

int bt_partlease_start(const struct bt_config *cfg, rd_kafka_t *consumer,
                       const char *group, const char *const *topics, size_t n,
                       const char *who, bt_rebalance_cb *cb, void *opaque,
                       struct bt_partlease **out, char *errstr, size_t errstr_size)
{
    static atomic_int made;
    struct bt_partlease *l;

    *out = NULL;
    if (!bt_config_partition_leases(cfg)) {
        if (!bt_kafka_subscribe(consumer, topics, n))
            return 0;
        snprintf(errstr, errstr_size, "cannot subscribe to %s",
                 n ? topics[0] : "no topic");
        return BT_EINVAL;
    }
    if (!(l = calloc(1, sizeof(*l))) || !(l->topics = calloc(n, sizeof(*l->topics)))) {
        free(l);
        snprintf(errstr, errstr_size, "partition leases: out of memory");
        return BT_ENOMEM;
    }
    if (!(l->store = bt_store_new(cfg, errstr, errstr_size)) ||
        !(l->beat_store = bt_store_new(cfg, errstr, errstr_size))) {
        bt_store_destroy(l->store);
        free(l->topics);
        free(l);
        return BT_EINVAL;
    }
    l->consumer = consumer;
    bt_kafka_set_manual(consumer, true);
    l->cb = cb;
    l->opaque = opaque;
    /* the start time tells this consumer from a predecessor with its pid,
     * the count from the process's other consumers of the group */
    snprintf(l->who, sizeof(l->who), "%s/%lld/%d", who, (long long)bt_clock_now_ms(),
             atomic_fetch_add(&made, 1));
    for (size_t i = 0; i < n; i++)
        add_topic(l, group, topics[i]);
    *out = l;
    bt_partlease_tick(l);
    /* without it, the renewals in the ticks still keep the membership */
    l->beating = pthread_create(&l->beat, NULL, heartbeat, l) == 0;
    return 0;
}

void bt_partlease_destroy(struct bt_partlease *l)
{
    if (!l)
        return;
    atomic_store(&l->stop, true);
    if (l->beating)
        pthread_join(l->beat, NULL);
    for (size_t i = 0; i < l->n; i++) {
        struct topic *t = &l->topics[i];
        rd_kafka_topic_partition_list_t *give =
            rd_kafka_topic_partition_list_new(t->parts);
        for (int p = 0; p < t->parts; p++)
            if (t->held[p])
                rd_kafka_topic_partition_list_add(give, t->name, p);
        move(l, t, RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS, give);
        rd_kafka_topic_partition_list_destroy(give);
        if (t->parts)
            freeReplyObject(call(l, t, true, ""));
        free(t->held);
    }
    bt_kafka_set_manual(l->consumer, false);
    bt_store_destroy(l->store);
    bt_store_destroy(l->beat_store);
    free(l->topics);
    free(l);
}
