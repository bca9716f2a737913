/* One round of schedule firing: claim (claim_schedules.lua), read the claimed
 * hashes and the overlap checks in two pipelined round trips, produce the
 * start events, wait for their delivery, then re-arm every schedule with
 * schedule_advance.lua. Nothing is re-armed before its event is delivered:
 * a crash or an outage in between only lets the lease expire, and the same
 * slot fires again under the same instance id, which workers drop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "codec.h"
#include "cron.h"
#include "err.h"
#include "instance.h"
#include "kafka.h"
#include "log.h"
#include "lua_scripts.h"
#include "schedules.h"

#define BATCH    100
#define LEASE_MS 30000
/* how long a fired instance may take to appear in Redis (a worker starting up,
 * a backlog) before overlap skip stops waiting for it: its start may have been
 * refused (an unknown workflow type, say) and must not block forever */
#define PENDING_MS 60000

enum outcome { FIRE, SKIP, NONE };

struct fire {
    const char *name; /* borrowed from the claim reply */
    redisReply *hash; /* HGETALL of its hash, or NULL when it is gone */
    int64_t due;      /* the slot being fired (ms) */
    int64_t next;     /* the slot after it; -1: delete (a one-shot) */
    enum outcome what;
    bool check; /* overlap skip: the last instance's status is asked */
    char id[BT_ID_MAX + 1];
    char error[300]; /* a schedule that cannot fire is paused with this */
};

/* Value of field name in an HGETALL reply, borrowed; NULL when absent. */
static const char *field(const redisReply *hash, const char *name)
{
    for (size_t i = 0; hash && i + 1 < hash->elements; i += 2)
        if (hash->element[i]->str && !strcmp(hash->element[i]->str, name))
            return hash->element[i + 1]->str;
    return NULL;
}

static void schedule_key(struct bt_store *store, const char *name, char *buf, size_t n)
{
    snprintf(buf, n, "%s:schedule:%s", bt_store_schedule_prefix(store), name);
}

/* Decides what to do with one claimed schedule, short of the overlap check. */
static void plan(struct fire *f, int64_t now)
{
    const char *next = field(f->hash, "next"), *cron_s = field(f->hash, "cron");
    const char *id = field(f->hash, "id"), *overlap = field(f->hash, "overlap");
    const char *last = field(f->hash, "last_id"), *paused = field(f->hash, "paused");
    struct bt_cron cron;
    char *end;
    int rc;

    f->what = NONE;
    f->due = next ? strtoll(next, &end, 10) : 0;
    f->next = f->due;
    if (!next || *end || !field(f->hash, "workflow")) {
        snprintf(f->error, sizeof(f->error), "schedule hash lacks next or workflow");
        return;
    }
    if (paused && !strcmp(paused, "1"))
        return; /* paused after the claim: re-armed as paused */
    if (field(f->hash, "once")) {
        f->next = -1;
        if (!id || strlen(id) > BT_ID_MAX || !field(f->hash, "event")) {
            snprintf(f->error, sizeof(f->error),
                     "one-shot schedule lacks its id or event");
            return;
        }
        snprintf(f->id, sizeof(f->id), "%s", id);
        f->what = FIRE;
        return;
    }
    if (bt_cron_parse(&cron, cron_s ? cron_s : "", f->error, sizeof(f->error)))
        return;
    /* after missed fires, one catch-up fire, then the first slot after now */
    rc = bt_cron_next(&cron, field(f->hash, "tz"), f->due > now ? f->due : now, &f->next);
    if (rc) {
        f->next = f->due;
        snprintf(f->error, sizeof(f->error), "%s",
                 rc == BT_EINVAL ? "tz: unknown time zone" : "cron: no fire time left");
        return;
    }
    if (!bt_cron_fire_id(f->name, f->due, f->id, sizeof(f->id))) {
        snprintf(f->error, sizeof(f->error), "name too long for an instance id");
        return;
    }
    f->what = FIRE;
    f->check = !(overlap && !strcmp(overlap, "allow")) && last && *last;
}

/* Whether the last instance (status in reply) still runs, or has not
 * appeared yet since its recent fire. */
static bool still_running(const redisReply *reply, const redisReply *hash, int64_t now)
{
    const char *last_fire = field(hash, "last_fire");

    if (reply->type == REDIS_REPLY_STRING)
        return !strcmp(reply->str, "running") || !strcmp(reply->str, "blocked");
    return last_fire && now - strtoll(last_fire, NULL, 10) < PENDING_MS;
}

/* Reads back the k replies of commands appended before an append failed, so
 * the connection carries no stale replies into the next round. */
static int drain(struct bt_redis *r, size_t k)
{
    for (redisReply *reply; k > 0; k--)
        if (!bt_redis_reply(r, &reply))
            freeReplyObject(reply);
    return BT_ENOMEM;
}

/* Reads the claimed hashes, then the status of the last instance of those
 * that skip overlapping fires: two pipelined round trips. */
static int load(struct bt_store *store, struct fire *fires, size_t n, int64_t now)
{
    struct bt_redis *r = bt_store_redis(store);
    char key[600];
    size_t asked = 0;

    for (size_t i = 0; i < n; i++) {
        const char *argv[] = {"HGETALL", key};
        schedule_key(store, fires[i].name, key, sizeof(key));
        if (bt_redis_append_argv(r, 2, argv, NULL))
            return drain(r, i);
    }
    for (size_t i = 0; i < n; i++) {
        if (bt_redis_reply(r, &fires[i].hash))
            return BT_EAGAIN;
        if (fires[i].hash->type != REDIS_REPLY_ARRAY || fires[i].hash->elements == 0) {
            freeReplyObject(fires[i].hash);
            fires[i].hash = NULL; /* deleted since the claim */
            continue;
        }
        plan(&fires[i], now);
    }
    for (size_t i = 0; i < n; i++) {
        const char *argv[] = {"HGET", key, "status"};
        if (!fires[i].check)
            continue;
        bt_store_key(store, field(fires[i].hash, "last_id"), "", key, sizeof(key));
        if (bt_redis_append_argv(r, 3, argv, NULL))
            return drain(r, asked);
        asked++;
    }
    for (size_t i = 0; i < n && asked; i++) {
        redisReply *reply;
        if (!fires[i].check)
            continue;
        if (bt_redis_reply(r, &reply))
            return BT_EAGAIN;
        asked--;
        if (still_running(reply, fires[i].hash, now))
            fires[i].what = SKIP;
        freeReplyObject(reply);
    }
    return 0;
}

/* The start event of one fire, stamped now: a one-shot's stored event (as
 * `baton start` encoded it, every option kept) or one built from the
 * schedule's workflow and input. Returns a new buffer (free()) and its
 * length, or NULL with f->error filled (BT_ENOMEM leaves it empty). */
static char *start_event(const struct bt_config *cfg, struct fire *f, int64_t now,
                         size_t *len, char **suffix)
{
    const char *event = field(f->hash, "event"), *input = field(f->hash, "input");
    struct bt_msg msg = {0};
    char *bytes = NULL;
    int rc;

    if (event) {
        rc = bt_codec_decode(event, strlen(event), (size_t)cfg->max_payload, &msg,
                             f->error, sizeof(f->error));
        if (rc == BT_ENOMEM)
            f->error[0] = '\0';
        if (rc)
            return NULL;
        if (msg.type == BT_MSG_START && !strcmp(msg.id, f->id)) {
            msg.ts = now;
            bytes = bt_codec_encode(&msg, len);
            *suffix = bt_events_suffix(msg.queue);
        } else {
            snprintf(f->error, sizeof(f->error), "event: not the start of %s", f->id);
        }
        bt_msg_release(&msg);
        return bytes;
    }
    msg = (struct bt_msg){.type = BT_MSG_START,
                          .id = f->id,
                          .workflow = (char *)(uintptr_t)field(f->hash, "workflow"),
                          .queue = (char *)(uintptr_t)field(f->hash, "queue"),
                          .ts = now};
    if (input && *input && !(msg.body = json_loads(input, JSON_DECODE_ANY, NULL))) {
        snprintf(f->error, sizeof(f->error), "input: not valid JSON");
        return NULL;
    }
    if (!(bytes = bt_codec_encode(&msg, len)))
        snprintf(f->error, sizeof(f->error), "workflow: not a valid type name");
    else
        *suffix = bt_events_suffix(msg.queue);
    json_decref(msg.body);
    return bytes;
}

/* Produces the start event of one fire into batch. Returns 0, BT_EINVALMSG
 * when it can never be produced (f->error says why), or BT_EAGAIN. */
static int produce(const struct bt_config *cfg, rd_kafka_t *rk, struct fire *f,
                   int64_t now, struct bt_kafka_batch *batch)
{
    char topic[300], *bytes, *suffix = NULL;
    size_t len;
    int rc;

    if (!(bytes = start_event(cfg, f, now, &len, &suffix)))
        return f->error[0] ? BT_EINVALMSG : BT_EAGAIN;
    bt_kafka_topic(cfg, suffix ? suffix : "events", topic, sizeof(topic));
    rc = bt_kafka_produce(rk, topic, f->id, strlen(f->id), bytes, len, batch);
    free(bytes);
    free(suffix);
    if (rc == BT_ETOOBIG) {
        snprintf(f->error, sizeof(f->error), "start event too large for Kafka");
        return BT_EINVALMSG;
    }
    return rc ? BT_EAGAIN : 0;
}

/* Re-arms every schedule still there, pipelined. */
static int advance(struct bt_store *store, struct fire *fires, size_t n, int64_t now)
{
    static const char *const outcomes[] = {
        [FIRE] = "fired", [SKIP] = "skipped", [NONE] = "none"};
    struct bt_redis *r = bt_store_redis(store);
    char key[600], set[600], due[32], next[32], now_s[32];
    size_t sent = 0;
    int ret = 0;

    snprintf(set, sizeof(set), "%s:schedules", bt_store_schedule_prefix(store));
    snprintf(now_s, sizeof(now_s), "%lld", (long long)now);
    for (size_t i = 0; i < n; i++) {
        struct fire *f = &fires[i];
        const char *argv[] = {key,   set,   f->name, due, next, outcomes[f->what],
                              f->id, now_s, f->error};
        if (!f->hash)
            continue;
        schedule_key(store, f->name, key, sizeof(key));
        snprintf(due, sizeof(due), "%lld", (long long)f->due);
        snprintf(next, sizeof(next), "%lld", (long long)f->next);
        if (f->next < 0 && f->what == FIRE)
            next[0] = '\0';
        if (bt_redis_append_eval(r, bt_lua_schedule_advance, 2, 9, argv, NULL))
            return drain(r, sent);
        sent++;
    }
    for (; sent > 0; sent--) {
        redisReply *reply;
        if (bt_redis_reply(r, &reply))
            ret = BT_EAGAIN;
        else if (reply->type == REDIS_REPLY_ERROR)
            bt_log(BT_LOG_ERROR, "cannot re-arm a schedule: %s", reply->str);
        freeReplyObject(reply);
    }
    return ret;
}

static void report(const struct fire *f, int64_t now, struct bt_schedule_stats *stats)
{
    if (f->error[0])
        bt_log(BT_LOG_ERROR, "schedule paused: %s schedule=%s", f->error, f->name);
    else if (f->what == FIRE)
        bt_log(BT_LOG_INFO, "schedule fired: schedule=%s workflow=%s late_ms=%lld",
               f->name, f->id, (long long)(now - f->due));
    else if (f->what == SKIP)
        bt_log(BT_LOG_INFO,
               "schedule fire skipped, previous instance still running: "
               "schedule=%s workflow=%s",
               f->name, f->id);
    stats->fired += f->what == FIRE;
    stats->skipped += f->what == SKIP;
}

int bt_schedules_fire(const struct bt_config *cfg, struct bt_store *store, rd_kafka_t *rk,
                      struct bt_schedule_stats *stats)
{
    char set[600], now_s[32], lease_s[32], limit_s[32];
    const char *argv[] = {set, now_s, lease_s, limit_s};
    struct bt_kafka_batch batch = {0};
    struct fire *fires = NULL;
    redisReply *claimed;
    int64_t now = bt_clock_now_ms();
    size_t n = 0;
    bool unsent = false;
    int ret = BT_EAGAIN;

    snprintf(set, sizeof(set), "%s:schedules", bt_store_schedule_prefix(store));
    snprintf(now_s, sizeof(now_s), "%lld", (long long)now);
    snprintf(lease_s, sizeof(lease_s), "%d", LEASE_MS);
    snprintf(limit_s, sizeof(limit_s), "%d", BATCH);
    claimed =
        bt_redis_eval(bt_store_redis(store), bt_lua_claim_schedules, 1, 4, argv, NULL);
    if (!claimed || claimed->type != REDIS_REPLY_ARRAY || claimed->elements < 1 ||
        claimed->element[claimed->elements - 1]->type != REDIS_REPLY_INTEGER)
        goto out;
    stats->next = claimed->element[claimed->elements - 1]->integer;
    if ((n = claimed->elements - 1) == 0) {
        ret = 0;
        goto out;
    }
    if (!(fires = calloc(n, sizeof(*fires))))
        goto out;
    for (size_t i = 0; i < n; i++)
        fires[i].name = claimed->element[i]->str;
    if (load(store, fires, n, now))
        goto out;
    for (size_t i = 0; i < n && !unsent; i++) {
        int rc;
        if (!fires[i].hash || fires[i].what != FIRE)
            continue;
        rc = produce(cfg, rk, &fires[i], now, &batch);
        if (rc == BT_EINVALMSG) {
            fires[i].what = NONE;
            fires[i].next = fires[i].due;
        } else if (rc) {
            unsent = true;
        }
    }
    /* the batch is referenced by each queued message until its report, so it
     * is waited for whatever happens; Kafka's message timeout bounds this */
    if (bt_kafka_wait(rk, &batch, -1) || unsent) {
        bt_log(BT_LOG_WARN,
               "start events not delivered: %s (schedule leases will expire)",
               batch.err ? rd_kafka_err2str(batch.err) : "local queue full");
        goto out;
    }
    if (advance(store, fires, n, now))
        goto out;
    for (size_t i = 0; i < n; i++)
        if (fires[i].hash)
            report(&fires[i], now, stats);
    ret = (int)n;
out:
    for (size_t i = 0; fires && i < n; i++)
        freeReplyObject(fires[i].hash);
    free(fires);
    freeReplyObject(claimed);
    return ret;
}
