/* Crashes of workflow code in Redis (crashes.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crashes.h"
#include "err.h"
#include "fatal.h"
#include "log.h"
#include "redis.h"

#define CRASHES_TTL_S     (30 * 24 * 3600)
#define CRASHED_TTL_S     (BT_CRASHES_CAREFUL_MS / 1000)
#define RECORD_TIMEOUT_MS 2000 /* within the handler's BT_FATAL_RECORD_MS */
#define CRASHED_TYPE      "WorkflowCrashed"

struct bt_crashes {
    struct bt_store *store;
    char *worker;
};

/* On the recorder's thread, the crashed thread waiting: one count more for
 * the instance, and the word that some code crashed. */
static void record(void *ctx, const struct bt_fatal_site *site, const char *what)
{
    struct bt_crashes *c = ctx;
    struct bt_redis *r = bt_store_redis(c->store);
    char key[600], crashed[300], last[600], stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    redisReply *reply;

    if (strcmp(site->kind, "workflow"))
        return; /* an activity's attempt is counted as it is taken */
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(last, sizeof(last), "%s on %s at %s", what, c->worker, stamp);
    bt_store_key(c->store, site->id, ":crashes", key, sizeof(key));
    snprintf(crashed, sizeof(crashed), "%s:crashed", bt_store_prefix(c->store));
    reply = bt_redis_command(r, "HINCRBY %s n 1", key);
    if (reply && reply->type == REDIS_REPLY_INTEGER) {
        bt_log(BT_LOG_ERROR, "crash recorded: workflow=%s crashes=%lld blocked_at=%d",
               site->id, reply->integer, BT_CRASHES_MAX);
        freeReplyObject(reply);
        freeReplyObject(bt_redis_command(r, "HSET %s last %s", key, last));
        freeReplyObject(bt_redis_command(r, "EXPIRE %s %d", key, CRASHES_TTL_S));
        freeReplyObject(
            bt_redis_command(r, "SET %s %s EX %d", crashed, c->worker, CRASHED_TTL_S));
        return;
    }
    freeReplyObject(reply);
    bt_log(BT_LOG_ERROR, "cannot record the crash in redis: workflow=%s", site->id);
}

struct bt_crashes *bt_crashes_install(const struct bt_config *cfg, const char *worker,
                                      char *errstr, size_t errstr_size)
{
    struct bt_crashes *c = calloc(1, sizeof(*c));

    if (!c || !(c->worker = strdup(worker))) {
        free(c);
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    if (!(c->store = bt_store_new(cfg, errstr, errstr_size))) {
        bt_crashes_destroy(c);
        return NULL;
    }
    bt_redis_set_timeout(bt_store_redis(c->store), RECORD_TIMEOUT_MS);
    if (bt_fatal_install(record, c, BT_CRASHES_HANG_MS)) {
        snprintf(errstr, errstr_size, "cannot start the crash recorder");
        bt_crashes_destroy(c);
        return NULL;
    }
    return c;
}

void bt_crashes_destroy(struct bt_crashes *c)
{
    if (!c)
        return;
    bt_fatal_forget(); /* nothing to record with from now on */
    bt_store_destroy(c->store);
    free(c->worker);
    free(c);
}

int bt_crashes_recent(struct bt_store *store)
{
    char key[300];
    redisReply *reply;
    int ret;

    snprintf(key, sizeof(key), "%s:crashed", bt_store_prefix(store));
    reply = bt_redis_command(bt_store_redis(store), "EXISTS %s", key);
    ret = reply && reply->type == REDIS_REPLY_INTEGER ? reply->integer > 0 : BT_EAGAIN;
    freeReplyObject(reply);
    return ret;
}

static bool blocked_for_crashes(const struct bt_instance *inst)
{
    const char *type = json_string_value(json_object_get(inst->error, "type"));

    return inst->status == BT_STATUS_BLOCKED && type && !strcmp(type, CRASHED_TYPE);
}

bool bt_crashes_may_run(struct bt_instance *inst, const struct bt_replay_env *env)
{
    char message[1024];

    if (inst->status != BT_STATUS_RUNNING && inst->status != BT_STATUS_BLOCKED)
        return true; /* no code runs anyway */
    if (inst->crashes < BT_CRASHES_MAX)
        return !blocked_for_crashes(inst) || inst->unblock_asked;
    /* blocked again after an unblock: the history says it, with the count */
    if (blocked_for_crashes(inst) && !inst->unblock_asked)
        return false;
    snprintf(message, sizeof(message),
             "its workflow code crashed a worker %d times (the last: %s); it is not run "
             "again until `baton unblock %s`, after a deploy that fixes it",
             inst->crashes, inst->crash_last ? inst->crash_last : "not recorded",
             inst->id);
    bt_log(BT_LOG_ERROR, "workflow code crashed workers: blocked workflow=%s crashes=%d",
           inst->id, inst->crashes);
    BT_ASSERT(bt_replay_block(inst, env, CRASHED_TYPE, message) == 0);
    return false;
}
