/* The outbox sweep: <kp>:outbox indexes instances by the time of their last
 * commit with commands; each command is "<topic>\n<key>\n<payload>" in the
 * instance's outbox hash. Workers forget delivered commands but leave the
 * index alone (a look per decision would cost more than one per instance):
 * outbox_sweep.lua drops the emptied instances past their grace and returns,
 * claimed for a grace, those with commands left, which are sent again. Consumers drop
 * duplicates of commands and events, so sending one twice (a slow worker that
 * was not dead) is harmless; a result is sent again only when the results
 * topic does not hold it already (lookback.h): it goes to the user's code. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

#include "clock.h"
#include "err.h"
#include "history.h"
#include "kafka.h"
#include "log.h"
#include "lookback.h"
#include "lua_scripts.h"
#include "instance.h"
#include "outbox.h"

static bool is_result(const redisReply *v)
{
    return v->len >= 8 && !memcmp(v->str, "results\n", 8);
}

/* When the result in outbox entry v was made (its "ts", wall ms); 0 when v
 * is no result or says no time. */
static int64_t result_made_ms(const redisReply *v)
{
    const char *nl2 = is_result(v) ? memchr(v->str + 8, '\n', v->len - 8) : NULL;
    json_t *msg;
    int64_t made = 0;

    if (nl2 &&
        (msg = json_loadb(nl2 + 1, v->len - (size_t)(nl2 + 1 - v->str), 0, NULL))) {
        made = json_integer_value(json_object_get(msg, "ts"));
        json_decref(msg);
    }
    return made;
}

/* Whether the command v ("<topic>\n<key>\n<payload>", split at nl1 and nl2),
 * made at made_ms, is a result already on the results topic. */
static bool delivered(const struct bt_config *cfg, struct bt_outbox_sweep *sw,
                      const char *topic, const redisReply *v, const char *nl1,
                      const char *nl2, int64_t made_ms)
{
    char key[300], errstr[256];
    struct bt_sought s = {key, nl2 + 1, v->len - (size_t)(nl2 + 1 - v->str), made_ms,
                          false};

    if (!is_result(v) || (size_t)(nl2 - nl1 - 1) >= sizeof(key))
        return false;
    if (!sw->reader &&
        !(sw->reader = bt_lookback_reader_new(cfg, errstr, sizeof(errstr)))) {
        bt_log(BT_LOG_WARN, "cannot look for sent results: %s", errstr);
        return false;
    }
    snprintf(key, sizeof(key), "%.*s", (int)(nl2 - nl1 - 1), nl1 + 1);
    if (bt_lookback(sw->reader, cfg, topic, &s, 1))
        bt_log(BT_LOG_WARN,
               "cannot tell whether a result was sent; sending it: workflow=%s", key);
    return s.found;
}

enum held { NOT_HELD, HELD_RUNNING, HELD_STALE, HELD_UNSURE };

/* The task deadline in an outbox entry's payload (after its second line);
 * 0: none or unreadable. */
static int64_t task_deadline(const redisReply *v)
{
    const char *nl1 = memchr(v->str, '\n', v->len), *nl2;
    json_t *task;
    int64_t deadline;

    if (!nl1 || !(nl2 = memchr(nl1 + 1, '\n', v->len - (size_t)(nl1 + 1 - v->str))))
        return 0;
    task = json_loadb(nl2 + 1, v->len - (size_t)(nl2 + 1 - v->str), 0, NULL);
    deadline = json_integer_value(json_object_get(task, "deadline"));
    json_decref(task);
    return deadline;
}

/* Whether worker, whose heartbeat is missing now, was missing at a look
 * BT_OUTBOX_GONE_MS ago or more (1; 0: this look is the first, marked now),
 * or BT_EAGAIN. */
static int missing_long(const struct bt_config *cfg, struct bt_redis *r,
                        const char *worker)
{
    char ttl[16];
    redisReply *reply;
    int ret = BT_EAGAIN;

    snprintf(ttl, sizeof(ttl), "%d", BT_OUTBOX_MISSING_TTL_MS);
    reply =
        bt_redis_command(r, "SET %s:missing:%s 1 NX PX %s", cfg->key_prefix, worker, ttl);
    if (!reply || reply->type != REDIS_REPLY_NIL) {
        ret = reply && reply->type == REDIS_REPLY_STATUS ? 0 : BT_EAGAIN; /* set now */
        goto out;
    }
    /* an earlier look's mark: how old it is */
    freeReplyObject(reply);
    reply = bt_redis_command(r, "PTTL %s:missing:%s", cfg->key_prefix, worker);
    if (reply && reply->type == REDIS_REPLY_INTEGER)
        ret = reply->integer >= 0 &&
              reply->integer <= BT_OUTBOX_MISSING_TTL_MS - BT_OUTBOX_GONE_MS;
out:
    freeReplyObject(reply);
    return ret;
}

/* What outbox entry v under field is: an eager task whose worker still lives
 * runs there (that worker forgets it when done), unless its deadline passed
 * a grace ago: then its timer has retried it and the worker would skip it
 * (a try whose commit went through unseen never submitted it), so it is only
 * forgotten. One whose worker is gone (missing_long) is sent to Kafka like
 * any unsent task. One whose worker's heartbeat is missing for the first
 * time, or has missed two beats (it may be dying: looked at again soon,
 * not a grace later), or that Redis cannot tell about, waits (HELD_UNSURE). */
static enum held held(const struct bt_config *cfg, struct bt_redis *r, const char *field,
                      const redisReply *v, int64_t grace_ms)
{
    const char *holder = bt_command_holder(field);
    char key[600];
    redisReply *alive;
    long long left; /* ms before the heartbeat expires; -2: gone, -1: none */
    int64_t deadline;

    if (!holder)
        return NOT_HELD;
    alive = bt_redis_command(r, "PTTL %s",
                             bt_alive_key(cfg->key_prefix, holder, key, sizeof(key)));
    left = alive && alive->type == REDIS_REPLY_INTEGER ? alive->integer : -3;
    freeReplyObject(alive);
    if (left == -3)
        return HELD_UNSURE;
    if (left == -2) {
        if (missing_long(cfg, r, holder) != 1)
            return HELD_UNSURE;
        bt_log(BT_LOG_INFO, "an eager task's worker is gone, sending the task: %s",
               field);
        return NOT_HELD;
    }
    deadline = task_deadline(v);
    if (deadline > 0 && bt_clock_now_ms() > deadline + grace_ms) {
        bt_log(BT_LOG_INFO, "a held task past its deadline, forgetting it: %s", field);
        return HELD_STALE;
    }
    /* two refreshes missed */
    return left >= 0 && left < BT_ALIVE_TTL_MS - 2 * BT_ALIVE_EVERY_MS ? HELD_UNSURE
                                                                       : HELD_RUNNING;
}

/* The hold on result v of instance id: its worker is the one that wrote the
 * run's last history record (the commit that ended the run). While that
 * worker lives the result is its to deliver, through a Kafka outage of any
 * length (librdkafka keeps it queued, the worker sends it again when it
 * times out); once it is gone (two looks, as for an eager task) the sweep
 * sends it. NOT_HELD when the record names no worker. */
static enum held result_held(const struct bt_config *cfg, struct bt_store *store,
                             const char *id, const redisReply *v, int64_t grace_ms)
{
    struct bt_redis *r = bt_store_redis(store);
    char key[600], field[320];
    redisReply *last = bt_redis_command(r, "LINDEX %s -1",
                                        bt_history_key(store, id, 0, key, sizeof(key)));
    char *text = last && last->type == REDIS_REPLY_STRING
                     ? bt_history_unpack(last->str, last->len)
                     : NULL;
    json_t *record = text ? json_loads(text, 0, NULL) : NULL;
    const char *worker = json_string_value(json_object_get(record, "worker"));
    enum held h = !last ? HELD_UNSURE : NOT_HELD;

    if (worker && snprintf(field, sizeof(field), "r" BT_HELD_MARK "%s", worker) <
                      (int)sizeof(field))
        h = held(cfg, r, field, v, grace_ms);
    json_decref(record);
    free(text);
    freeReplyObject(last);
    return h;
}

/* Whether the outbox entry v of instance id may be sent here: any command
 * but a result, and a result once this sweep has the right to send it
 * (*right: -1 not asked yet, then bt_store_take_resend's answer). */
static bool may_send(struct bt_store *store, const char *id, const redisReply *v,
                     int *right)
{
    char me[320], host[256] = "";

    if (!is_result(v))
        return true;
    gethostname(host, sizeof(host) - 1);
    snprintf(me, sizeof(me), "scheduler@%s:%d", host, (int)getpid());
    if (*right < 0 && (*right = bt_store_take_resend(store, id, me, 60000)) == 0)
        bt_log(BT_LOG_INFO, "another process is sending the result: workflow=%s", id);
    return *right == 1;
}

/* Instance id is looked at again at the time at (wall ms), not a grace from
 * now (its claim): the index's score is its last commit, which the sweep
 * takes a grace after. */
static void look_again_at(struct bt_store *store, const char *id, int64_t grace_ms,
                          int64_t at)
{
    char kp[BT_STORE_KP_SIZE], score[32];

    snprintf(score, sizeof(score), "%lld", (long long)(at - grace_ms));
    freeReplyObject(bt_redis_command(bt_store_redis(store), "ZADD %s:outbox XX %s %s",
                                     bt_store_kp_of(store, id, kp, sizeof(kp)), score,
                                     id));
}

static int resend_one(const struct bt_config *cfg, struct bt_store *store, rd_kafka_t *rk,
                      struct bt_outbox_sweep *sw, const char *id, int64_t grace_ms)
{
    struct bt_redis *r = bt_store_redis(store);
    char key[600], topic[600], count[16];
    struct bt_kafka_batch batch = {0};
    redisReply *hash, *ack = NULL;
    const char **argv = NULL;
    int ret = BT_EAGAIN, sent = 0, forgotten = 0, right = -1;
    int64_t now = bt_clock_now_ms(), again = INT64_MAX; /* INT64_MAX: a grace */

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
        enum held h = held(cfg, r, hash->element[i]->str, v, grace_ms);
        int64_t made = result_made_ms(v);

        if (is_result(v) && h == NOT_HELD)
            h = result_held(cfg, store, id, v, grace_ms);
        /* A result is its worker's to send for BT_OUTBOX_RESULT_GRACE_MS
         * (one committed since this sweep claimed the instance, too): looked
         * at again when it is that old. (A time a minute or more ahead of
         * ours is a clock gone wrong, not a young result.) */
        bool young = made > now - BT_OUTBOX_RESULT_GRACE_MS && made < now + 60000;
        if (young && made + BT_OUTBOX_RESULT_GRACE_MS < again)
            again = made + BT_OUTBOX_RESULT_GRACE_MS;
        if (h == HELD_UNSURE && now + BT_OUTBOX_GONE_MS < again)
            again = now + BT_OUTBOX_GONE_MS;
        if (h == HELD_RUNNING || h == HELD_UNSURE || young ||
            !may_send(store, id, v, &right))
            continue;
        if (h == HELD_STALE) {
            argv[2 + forgotten++] = hash->element[i]->str;
            continue;
        }
        const char *nl1 = memchr(v->str, '\n', v->len), *nl2;
        if (!nl1 || !(nl2 = memchr(nl1 + 1, '\n', v->len - (size_t)(nl1 + 1 - v->str)))) {
            bt_log(BT_LOG_ERROR, "dropping a malformed outbox entry: workflow=%s", id);
        } else {
            char suffix[300];
            snprintf(suffix, sizeof(suffix), "%.*s", (int)(nl1 - v->str), v->str);
            bt_kafka_topic(cfg, suffix, topic, sizeof(topic));
            if (delivered(cfg, sw, topic, v, nl1, nl2, made)) {
                bt_log(BT_LOG_INFO,
                       "result found sent, not sending it again: workflow=%s", id);
            } else if (bt_kafka_produce(rk, topic, nl1 + 1, (size_t)(nl2 - nl1 - 1),
                                        nl2 + 1, v->len - (size_t)(nl2 + 1 - v->str),
                                        &batch)) {
                goto out;
            } else {
                sent++;
            }
        }
        argv[2 + forgotten++] = hash->element[i]->str;
    }
    if (bt_kafka_wait(rk, &batch, 30000))
        goto out;
    if (sent)
        bt_log(BT_LOG_INFO, "re-sent unsent commands: count=%d workflow=%s", sent, id);
    snprintf(count, sizeof(count), "%d", forgotten);
    argv[1] = count;
    ack = bt_redis_eval(r, bt_lua_ack, 1, 2 + forgotten, argv, NULL);
    if (again != INT64_MAX)
        look_again_at(store, id, grace_ms, again);
    ret = sent;
out:
    /* queued messages point at batch: it must outlive their reports */
    if (batch.pending)
        bt_kafka_wait(rk, &batch, -1);
    if (right == 1)
        bt_store_give_resend(store, id);
    free(argv);
    freeReplyObject(ack);
    freeReplyObject(hash);
    return ret;
}

/* One shard's part of the sweep (store.h); *more set when it had more. */
static int resend_shard(const struct bt_config *cfg, struct bt_store *store,
                        rd_kafka_t *rk, int64_t grace_ms, struct bt_outbox_sweep *sw,
                        int shard, bool *more)
{
    char index[300], before[32], limit[32], now[32], kp[BT_STORE_KP_SIZE];
    const char *argv[] = {index, before, limit,
                          bt_store_shard_kp(store, shard, kp, sizeof(kp)), now};
    int64_t now_ms = bt_clock_now_ms();
    redisReply *ids;
    int total = 0;

    snprintf(index, sizeof(index), "%s:outbox", argv[3]);
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
    *more = ids->element[0]->integer == BT_OUTBOX_SWEEP_LIMIT;
    for (size_t i = 1; i < ids->elements; i++) {
        int n = resend_one(cfg, store, rk, sw, ids->element[i]->str, grace_ms);
        if (n < 0) {
            total = n;
            *more = false;
            break;
        }
        total += n;
    }
    freeReplyObject(ids);
    return total;
}

int bt_outbox_resend(const struct bt_config *cfg, struct bt_store *store,
                     const struct bt_shard_lease *lease, rd_kafka_t *rk, int64_t grace_ms,
                     struct bt_outbox_sweep *sw)
{
    int total = 0;

    sw->more = false;
    for (int shard = 0; shard < bt_store_shards(store); shard++) {
        bool more = false;
        int n = bt_shard_lease_holds(lease, shard)
                    ? resend_shard(cfg, store, rk, grace_ms, sw, shard, &more)
                    : 0;

        if (n < 0)
            return n;
        total += n;
        sw->more = sw->more || more;
    }
    return total;
}

void bt_outbox_sweep_end(struct bt_outbox_sweep *sw)
{
    if (sw->reader) {
        rd_kafka_consumer_close(sw->reader);
        rd_kafka_destroy(sw->reader);
    }
    sw->reader = NULL;
}
