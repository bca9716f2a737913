/* A new Kafka cluster times out the attempts in flight (kafka_change.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka_change.h"
#include "log.h"
#include "redis.h"

/* Moves shard's activity timeout timers to due; their count, or -1. */
static long retime(struct bt_redis *r, const char *kp, const char *due)
{
    char timers[BT_STORE_KP_SIZE + 16], cursor[32] = "0";
    long moved = 0;

    snprintf(timers, sizeof(timers), "%s:timers", kp);
    do {
        redisReply *page =
            bt_redis_argv(r, 7,
                          (const char *[]){"ZSCAN", timers, cursor, "MATCH", "timeout|*",
                                           "COUNT", "500"},
                          NULL);
        redisReply *members;
        if (!page || page->type != REDIS_REPLY_ARRAY || page->elements != 2) {
            freeReplyObject(page);
            return -1;
        }
        snprintf(cursor, sizeof(cursor), "%s", page->element[0]->str);
        members = page->element[1];
        /* ZSCAN pairs member, score: XX, as one may have fired meanwhile */
        for (size_t i = 0; i + 1 < members->elements; i += 2) {
            redisReply *ok = bt_redis_argv(
                r, 5,
                (const char *[]){"ZADD", timers, "XX", due, members->element[i]->str},
                NULL);
            moved += ok && ok->type == REDIS_REPLY_INTEGER;
            freeReplyObject(ok);
        }
        freeReplyObject(page);
    } while (strcmp(cursor, "0"));
    return moved;
}

long bt_kafka_change_check(struct bt_store *store, rd_kafka_t *rk)
{
    struct bt_redis *r = bt_store_redis(store);
    char *cluster = rd_kafka_clusterid(rk, 5000), id[256], key[BT_STORE_KP_SIZE + 32],
         kp[BT_STORE_KP_SIZE], due[32];
    const char *epoch = getenv("BATON_DEV_EPOCH");
    redisReply *old;
    long moved = 0, n;
    int64_t now;

    if (!cluster) {
        bt_log(BT_LOG_WARN, "kafka cluster check skipped: no cluster id from Kafka");
        return -1;
    }
    /* `baton dev` names each run's embedded cluster: the mock cluster's id
     * is its address, which another run can have again */
    snprintf(id, sizeof(id), "%s%s%s", cluster, epoch && *epoch ? "@" : "",
             epoch && *epoch ? epoch : "");
    rd_kafka_mem_free(rk, cluster);
    snprintf(key, sizeof(key), "%s:kafka:cluster",
             bt_store_shard_kp(store, 0, kp, sizeof(kp)));
    old = bt_redis_argv(r, 3, (const char *[]){"GETSET", key, id}, NULL);
    if (!old || old->type == REDIS_REPLY_ERROR) {
        bt_log(BT_LOG_WARN, "kafka cluster check skipped: redis did not answer");
        freeReplyObject(old);
        return -1;
    }
    if (old->type != REDIS_REPLY_STRING || !strcmp(old->str, id) ||
        (now = bt_redis_now_ms(r)) < 0) {
        freeReplyObject(old);
        return 0;
    }
    snprintf(due, sizeof(due), "%lld", (long long)now);
    for (int s = 0; s < bt_store_shards(store) && moved >= 0; s++)
        moved = (n = retime(r, bt_store_shard_kp(store, s, kp, sizeof(kp)), due)) < 0
                    ? -1
                    : moved + n;
    bt_log(moved >= 0 ? BT_LOG_WARN : BT_LOG_ERROR,
           "kafka cluster changed (%s, was %s): its messages are gone; attempts in "
           "flight timed out now: timers=%ld%s",
           id, old->str, moved,
           moved >= 0 ? ""
                      : " (redis failed midway: the rest time "
                        "out a schedule-to-start later)");
    freeReplyObject(old);
    return moved;
}
