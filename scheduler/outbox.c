/* The outbox sweep: <kp>:outbox indexes instances by the time of their last
 * commit with commands; each command is "<topic>\n<key>\n<payload>" in the
 * instance's outbox hash. Workers forget delivered commands but leave the
 * index alone (a look per decision would cost more than one per instance):
 * outbox_sweep.lua drops the emptied instances past their grace and returns,
 * claimed for a grace, those with commands left, which are sent again. Consumers drop
 * duplicates, so sending one twice (a slow worker that was not dead) is harmless. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "err.h"
#include "kafka.h"
#include "log.h"
#include "lua_scripts.h"
#include "outbox.h"

static int resend_one(const struct bt_config *cfg, struct bt_store *store, rd_kafka_t *rk,
                      const char *id)
{
    struct bt_redis *r = bt_store_redis(store);
    char key[600], topic[600], count[16];
    struct bt_kafka_batch batch = {0};
    redisReply *hash, *ack = NULL;
    const char **argv = NULL;
    int ret = BT_EAGAIN, sent = 0;

    bt_store_key(store, id, ":outbox", key, sizeof(key));
    hash = bt_redis_command(r, "HGETALL %s", key);
    if (!hash || hash->type != REDIS_REPLY_ARRAY)
        goto out;
    /* ack.lua's arguments: this outbox, the count, the fields */
    if (!(argv = calloc(hash->elements / 2 + 2, sizeof(*argv))))
        goto out;
    argv[0] = key;
    for (size_t i = 0; i + 1 < hash->elements; i += 2) {
        const redisReply *v = hash->element[i + 1];
        const char *nl1 = memchr(v->str, '\n', v->len), *nl2;
        if (!nl1 || !(nl2 = memchr(nl1 + 1, '\n', v->len - (size_t)(nl1 + 1 - v->str)))) {
            bt_log(BT_LOG_ERROR, "dropping a malformed outbox entry: workflow=%s", id);
        } else {
            char suffix[300];
            snprintf(suffix, sizeof(suffix), "%.*s", (int)(nl1 - v->str), v->str);
            bt_kafka_topic(cfg, suffix, topic, sizeof(topic));
            if (bt_kafka_produce(rk, topic, nl1 + 1, (size_t)(nl2 - nl1 - 1), nl2 + 1,
                                 v->len - (size_t)(nl2 + 1 - v->str), &batch))
                goto out;
        }
        argv[2 + sent++] = hash->element[i]->str;
    }
    if (bt_kafka_wait(rk, &batch, 30000))
        goto out;
    if (sent)
        bt_log(BT_LOG_INFO, "re-sent unsent commands: count=%d workflow=%s", sent, id);
    snprintf(count, sizeof(count), "%d", sent);
    argv[1] = count;
    ack = bt_redis_eval(r, bt_lua_ack, 1, 2 + sent, argv, NULL);
    ret = sent;
out:
    /* queued messages point at batch: it must outlive their reports */
    if (batch.pending)
        bt_kafka_wait(rk, &batch, -1);
    free(argv);
    freeReplyObject(ack);
    freeReplyObject(hash);
    return ret;
}

int bt_outbox_resend(const struct bt_config *cfg, struct bt_store *store, rd_kafka_t *rk,
                     int64_t grace_ms, struct bt_outbox_sweep *sw)
{
    char index[300], before[32], limit[32], now[32];
    const char *argv[] = {index, before, limit, bt_store_prefix(store), now};
    int64_t now_ms = bt_clock_now_ms();
    redisReply *ids;
    int total = 0;

    snprintf(index, sizeof(index), "%s:outbox", bt_store_prefix(store));
    snprintf(before, sizeof(before), "%lld", (long long)(now_ms - grace_ms));
    snprintf(limit, sizeof(limit), "%d", BT_OUTBOX_SWEEP_LIMIT);
    snprintf(now, sizeof(now), "%lld", (long long)now_ms);
    ids = bt_redis_eval(bt_store_redis(store), bt_lua_outbox_sweep, 1, 5, argv, NULL);
    if (!ids || ids->type != REDIS_REPLY_ARRAY || ids->elements < 1 ||
        ids->element[0]->type != REDIS_REPLY_INTEGER) {
        if (ids && ids->type == REDIS_REPLY_ERROR)
            bt_log(BT_LOG_WARN, "outbox sweep refused by redis: %s", ids->str);
        freeReplyObject(ids);
        return BT_EAGAIN;
    }
    /* the emptied ones left the index and the others were claimed (scored
     * now): the round's next step starts from the index's head again */
    sw->more = ids->element[0]->integer == BT_OUTBOX_SWEEP_LIMIT;
    for (size_t i = 1; i < ids->elements; i++) {
        int n = resend_one(cfg, store, rk, ids->element[i]->str);
        if (n < 0) {
            total = n;
            sw->more = false;
            break;
        }
        total += n;
    }
    freeReplyObject(ids);
    return total;
}
