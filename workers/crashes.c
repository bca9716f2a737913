/* Crashes of workflow code in Redis (crashes.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
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

/* One more instance of type whose code crashed (first: its first crash;
 * a later one only keeps the record), kept 10 minutes after the last crash.
 * An older baton's "<kp>:crashed" was a string: replaced. */
static void count_in_type(struct bt_redis *r, const char *crashed, const char *type,
                          bool first)
{
    for (int tries = 0; tries < 2; tries++) {
        redisReply *reply = bt_redis_command(r, "HINCRBY %s %s %d", crashed, type, first);
        bool wrongtype = reply && reply->type == REDIS_REPLY_ERROR &&
                         !strncmp(reply->str, "WRONGTYPE", 9);
        if (first && reply && reply->type == REDIS_REPLY_INTEGER &&
            reply->integer == BT_CRASHES_TYPE_MAX)
            bt_log(BT_LOG_ERROR,
                   "workflow code crashed in %d instances of its type: the type is "
                   "stopped, its instances are blocked as their events come type=%s",
                   BT_CRASHES_TYPE_MAX, type);
        freeReplyObject(reply);
        if (!wrongtype)
            break;
        freeReplyObject(bt_redis_command(r, "DEL %s", crashed));
    }
    freeReplyObject(bt_redis_command(r, "EXPIRE %s %d", crashed, CRASHED_TTL_S));
}

/* On the recorder's thread, the crashed thread waiting: one count more for
 * the instance, and for its type at the instance's first crash. */
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
        long long n = reply->integer;
        bt_log(BT_LOG_ERROR, "crash recorded: workflow=%s crashes=%lld blocked_at=%d",
               site->id, n, BT_CRASHES_MAX);
        freeReplyObject(reply);
        freeReplyObject(bt_redis_command(r, "HSET %s last %s", key, last));
        freeReplyObject(bt_redis_command(r, "EXPIRE %s %d", key, CRASHES_TTL_S));
        count_in_type(r, crashed, site->name ? site->name : "", n == 1);
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

void bt_crashes_seen_clear(struct bt_crashes_seen *seen)
{
    for (size_t i = 0; i < seen->n_stopped; i++)
        free(seen->stopped[i]);
    free(seen->stopped);
    memset(seen, 0, sizeof(*seen));
}

/* The types counted BT_CRASHES_TYPE_MAX times in the HGETALL reply all. */
static void read_stopped(struct bt_crashes_seen *seen, const redisReply *all)
{
    if (all->type != REDIS_REPLY_ARRAY) /* an older baton's string */
        return;
    for (size_t i = 0; i + 1 < all->elements; i += 2) {
        char **more, *name;
        if (atoi(all->element[i + 1]->str) < BT_CRASHES_TYPE_MAX)
            continue;
        more = realloc(seen->stopped, (seen->n_stopped + 1) * sizeof(*more));
        name = strdup(all->element[i]->str);
        BT_ASSERT(more && name);
        seen->stopped = more;
        seen->stopped[seen->n_stopped++] = name;
    }
}

int bt_crashes_read(struct bt_store *store, struct bt_crashes_seen *seen)
{
    struct bt_redis *r = bt_store_redis(store);
    redisReply *all, *ttl = NULL;
    char key[300];
    int ret = 0;

    bt_crashes_seen_clear(seen);
    snprintf(key, sizeof(key), "%s:crashed", bt_store_prefix(store));
    if ((all = bt_redis_command(r, "HGETALL %s", key)))
        ttl = bt_redis_command(r, "PTTL %s", key);
    if (!ttl || ttl->type != REDIS_REPLY_INTEGER) {
        ret = BT_EAGAIN;
    } else if (ttl->integer != -2) { /* -2: none; -1: kept by hand, for 10 minutes */
        seen->until = bt_clock_now_ms() +
                      (ttl->integer >= 0 ? ttl->integer : BT_CRASHES_CAREFUL_MS);
        read_stopped(seen, all);
    }
    freeReplyObject(all);
    freeReplyObject(ttl);
    return ret;
}

static bool blocked_for_crashes(const struct bt_instance *inst)
{
    const char *type = json_string_value(json_object_get(inst->error, "type"));

    return inst->status == BT_STATUS_BLOCKED && type && !strcmp(type, CRASHED_TYPE);
}

static bool stopped(const struct bt_crashes_seen *seen, const char *type)
{
    for (size_t i = 0; type && i < seen->n_stopped; i++)
        if (!strcmp(seen->stopped[i], type))
            return true;
    return false;
}

bool bt_crashes_may_run(struct bt_instance *inst, const struct bt_replay_env *env,
                        const struct bt_crashes_seen *seen)
{
    char message[1024];

    if (inst->status != BT_STATUS_RUNNING && inst->status != BT_STATUS_BLOCKED)
        return true; /* no code runs anyway */
    if (blocked_for_crashes(inst) && !inst->unblock_asked)
        return false;
    if (inst->crashes >= BT_CRASHES_MAX) {
        snprintf(message, sizeof(message),
                 "its workflow code crashed a worker %d times (the last: %s); it is not "
                 "run again until `baton unblock %s`, after a deploy that fixes it",
                 inst->crashes, inst->crash_last ? inst->crash_last : "not recorded",
                 inst->id);
        bt_log(BT_LOG_ERROR,
               "workflow code crashed workers: blocked workflow=%s crashes=%d", inst->id,
               inst->crashes);
    } else if (inst->status == BT_STATUS_RUNNING && !inst->unblock_asked &&
               stopped(seen, inst->type)) {
        snprintf(message, sizeof(message),
                 "the code of its type %s crashed workers in %d instances within 10 "
                 "minutes of each other (a deploy that crashes, not one input); it is "
                 "not run until `baton unblock %s` (all of them: `baton unblock --query "
                 "'status=blocked AND type=%s'`), after a deploy that fixes it",
                 inst->type, BT_CRASHES_TYPE_MAX, inst->id, inst->type);
        bt_log(BT_LOG_ERROR,
               "workflow type stopped for its crashes: blocked workflow=%s type=%s",
               inst->id, inst->type);
    } else {
        return true;
    }
    BT_ASSERT(bt_replay_block(inst, env, CRASHED_TYPE, message) == 0);
    return false;
}
