/* Timer members are "<kind>|<seq>|<attempt>|<id>" (journal.h); the id comes
 * last because it may itself contain '|'. */
#define _GNU_SOURCE /* asprintf */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "codec.h"
#include "err.h"
#include "journal.h"
#include "kafka.h"
#include "log.h"
#include "lua_scripts.h"
#include "timers.h"

#define BATCH    1000
#define LEASE_MS 10000

/* Parses a member into a timer event; 0 or BT_EINVALMSG. */
static int parse_member(const char *member, struct bt_msg *msg, char *kind, size_t kind_n)
{
    const char *p1 = strchr(member, '|'), *p2, *p3;
    char *end;

    if (!p1 || !(p2 = strchr(p1 + 1, '|')) || !(p3 = strchr(p2 + 1, '|')) ||
        (size_t)(p1 - member) >= kind_n || !p3[1])
        return BT_EINVALMSG;
    memcpy(kind, member, (size_t)(p1 - member));
    kind[p1 - member] = '\0';
    msg->type = BT_MSG_TIMER;
    msg->kind = kind;
    msg->seq = strtoll(p1 + 1, &end, 10);
    if (end != p2)
        return BT_EINVALMSG;
    msg->attempt = (int)strtol(p2 + 1, &end, 10);
    if (end != p3)
        return BT_EINVALMSG;
    msg->id = (char *)(uintptr_t)(p3 + 1);
    return 0;
}

/* The events topic of each claimed timer's instance (its workflow queue's),
 * one pipelined round trip for the whole claim. topics[i] for reply element
 * 2i; malloc'd strings, NULL for a malformed member. */
static int events_topics(const struct bt_config *cfg, struct bt_store *store,
                         const redisReply *claimed, char **topics)
{
    size_t n = claimed->elements / 2;
    int ret = 0;

    for (size_t i = 0; i < n; i++) {
        struct bt_msg msg = {0};
        char kind[32], key[600];
        const char *argv[] = {"HGET", key, "queue"};
        if (parse_member(claimed->element[2 * i]->str, &msg, kind, sizeof(kind)))
            snprintf(key, sizeof(key), "%s:{}", bt_store_prefix(store));
        else
            bt_store_key(store, msg.id, "", key, sizeof(key));
        if (bt_redis_append_argv(bt_store_redis(store), 3, argv, NULL))
            return BT_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        redisReply *reply = NULL;
        char topic[512], *suffix;
        if (bt_redis_reply(bt_store_redis(store), &reply)) {
            ret = BT_EAGAIN;
            continue;
        }
        suffix = bt_events_suffix(reply->type == REDIS_REPLY_STRING ? reply->str : NULL);
        bt_kafka_topic(cfg, suffix, topic, sizeof(topic));
        topics[i] = strdup(topic);
        free(suffix);
        freeReplyObject(reply);
    }
    return ret;
}

int bt_timers_fire(const struct bt_config *cfg, struct bt_store *store, rd_kafka_t *rk,
                   struct bt_timer_stats *stats)
{
    char timers[300], leased[300], now_s[32], lease_s[32], limit_s[32];
    char **topics = NULL;
    const char *argv[] = {timers, leased, now_s, lease_s, limit_s};
    struct bt_kafka_batch batch = {0};
    redisReply *reply, *ack = NULL;
    int64_t now = bt_clock_now_ms();
    int ret = BT_EAGAIN, fired = 0;
    const char **members = NULL;

    snprintf(timers, sizeof(timers), "%s:timers", bt_store_prefix(store));
    snprintf(leased, sizeof(leased), "%s:timers:leased", bt_store_prefix(store));
    snprintf(now_s, sizeof(now_s), "%lld", (long long)now);
    snprintf(lease_s, sizeof(lease_s), "%d", LEASE_MS);
    snprintf(limit_s, sizeof(limit_s), "%d", BATCH);
    reply = bt_redis_eval(bt_store_redis(store), bt_lua_claim_timers, 2, 5, argv, NULL);
    if (!reply || reply->type != REDIS_REPLY_ARRAY)
        goto out;
    if (!(topics = calloc(reply->elements / 2 + 1, sizeof(*topics))) ||
        events_topics(cfg, store, reply, topics))
        goto out; /* the leases expire and the timers are claimed again */
    if (!(members = calloc(reply->elements / 2 + 3, sizeof(*members))))
        goto out;
    members[0] = "ZREM";
    members[1] = leased;
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        struct bt_msg msg = {0};
        char kind[32], *bytes;
        size_t len;
        int64_t late = now - strtoll(reply->element[i + 1]->str, NULL, 10);
        if (parse_member(reply->element[i]->str, &msg, kind, sizeof(kind))) {
            bt_log(BT_LOG_ERROR, "dropping a malformed timer: %s",
                   reply->element[i]->str);
        } else {
            msg.ts = now;
            if ((bytes = bt_codec_encode(&msg, &len))) {
                if (bt_kafka_produce(rk, topics[i / 2], msg.id, strlen(msg.id), bytes,
                                     len, &batch)) {
                    free(bytes);
                    goto out;
                }
                free(bytes);
            }
            stats->late_ms_sum += (uint64_t)(late > 0 ? late : 0);
            if (late > stats->late_ms_max)
                stats->late_ms_max = late;
            bt_metrics_observe(stats->lateness, (double)(late > 0 ? late : 0) / 1000.0);
        }
        members[2 + fired++] = reply->element[i]->str;
    }
    if (fired == 0) {
        ret = 0;
        goto out;
    }
    if (bt_kafka_wait(rk, &batch, 30000)) {
        bt_log(BT_LOG_WARN, "timer events not delivered: %s (their leases will expire)",
               rd_kafka_err2str(batch.err));
        goto out;
    }
    /* delivered: the leases can go (a lost ZREM only fires the timer again) */
    ack = bt_redis_argv(bt_store_redis(store), 2 + fired, members, NULL);
    stats->fired += (uint64_t)fired;
    ret = fired;
out:
    /* queued messages point at batch: it must outlive their reports */
    if (batch.pending)
        bt_kafka_wait(rk, &batch, -1);
    free(members);
    for (size_t i = 0; topics && reply && i < reply->elements / 2; i++)
        free(topics[i]);
    free(topics);
    freeReplyObject(ack);
    freeReplyObject(reply);
    return ret;
}

int64_t bt_timers_pending(struct bt_store *store)
{
    char timers[300];
    const char *argv[] = {"ZCARD", timers};
    redisReply *reply;
    int64_t ret = BT_EAGAIN;

    snprintf(timers, sizeof(timers), "%s:timers", bt_store_prefix(store));
    reply = bt_redis_argv(bt_store_redis(store), 2, argv, NULL);
    if (reply && reply->type == REDIS_REPLY_INTEGER)
        ret = reply->integer;
    freeReplyObject(reply);
    return ret;
}
