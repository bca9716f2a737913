/* The backfill passes (backfill.h): for each shard, its marker looked at,
 * then a ZSCAN of each of the pass's indexes, each page handed to the
 * pass's script, then the marker set. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backfill.h"
#include "clock.h"
#include "err.h"
#include "log.h"
#include "lua_scripts.h"

static const char *const finals[] = {"completed", "failed", "cancelled", "terminated"};
static const char *const every[] = {"all"};
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const struct pass {
    const char *name;   /* for the log */
    const char *marker; /* after the shard's prefix */
    const char *const *indexes;
    int n_indexes;
} passes[] = {
    [BT_BACKFILL_RETENTION] = {"retention backfill", "retention:backfilled", finals,
                               COUNT(finals)},
    [BT_BACKFILL_COUNTS] = {"counts backfill", "counted", every, COUNT(every)},
};

/* retention_backfill.lua's arguments before the ids: keys, key prefix, the
 * default retention and the per-type rules as (type, ms) pairs. Returns
 * how many were written into argv (texts into buf), or BT_EINVAL. */
static int retention_args(const struct bt_config *cfg, const char *kp, const char **argv,
                          char (*buf)[300], char *keys[2])
{
    int argc = 0;

    snprintf(keys[0], 300, "%s:retention", kp);
    snprintf(keys[1], 300, "%s:retention:leased", kp);
    argv[argc++] = keys[0];
    argv[argc++] = keys[1];
    argv[argc++] = kp;
    snprintf(buf[0], sizeof(buf[0]), "%lld", (long long)cfg->retention_ms);
    argv[argc++] = buf[0];
    snprintf(buf[1], sizeof(buf[1]), "%zu", cfg->n_retention_types);
    argv[argc++] = buf[1];
    for (size_t i = 0; i < cfg->n_retention_types; i++) {
        const char *rule = cfg->retention_types[i], *eq = strrchr(rule, '=');
        int64_t ms = 0;
        if (!eq || bt_config_duration(eq + 1, &ms))
            return BT_EINVAL; /* bt_config_load refused it already */
        snprintf(buf[2 + 2 * i], sizeof(buf[0]), "%.*s", (int)(eq - rule), rule);
        snprintf(buf[3 + 2 * i], sizeof(buf[0]), "%lld", (long long)ms);
        argv[argc++] = buf[2 + 2 * i];
        argv[argc++] = buf[3 + 2 * i];
    }
    return argc;
}

/* Hands one ZSCAN page ([member, score, ...]) of shard kp to the pass's
 * script. Returns what it added, or BT_EAGAIN. */
static int hand_over(const struct bt_backfill *bf, const struct bt_config *cfg,
                     struct bt_store *store, const char *kp, const redisReply *page)
{
    char set[300], leased[300], *keys[2] = {set, leased};
    size_t max = 5 + 2 * cfg->n_retention_types + page->elements;
    const char **argv = calloc(max, sizeof(*argv));
    char(*buf)[300] = calloc(2 + 2 * cfg->n_retention_types, sizeof(*buf));
    const char *script = bt_lua_retention_backfill;
    redisReply *reply = NULL;
    int argc = 2, nkeys = 2, ret = BT_ENOMEM;

    if (!argv || !buf)
        goto out;
    if (bf->kind == BT_BACKFILL_COUNTS) {
        snprintf(set, sizeof(set), "%s:counts", kp);
        argv[0] = set;
        argv[1] = kp;
        nkeys = 1;
        script = bt_lua_counts_backfill;
    } else if ((argc = retention_args(cfg, kp, argv, buf, keys)) < 0) {
        goto out;
    }
    for (size_t i = 0; i < page->elements; i++)
        argv[argc++] = page->element[i]->str;
    reply = bt_redis_eval(bt_store_redis(store), script, nkeys, argc, argv, NULL);
    ret = reply && reply->type == REDIS_REPLY_INTEGER ? (int)reply->integer : BT_EAGAIN;
out:
    freeReplyObject(reply);
    free(argv);
    free(buf);
    return ret;
}

/* Whether shard kp's pass was done already (its marker), or BT_EAGAIN. */
static int marked(struct bt_store *store, const char *kp, const struct pass *p)
{
    redisReply *reply =
        bt_redis_command(bt_store_redis(store), "EXISTS %s:%s", kp, p->marker);
    int ret =
        reply && reply->type == REDIS_REPLY_INTEGER ? (int)reply->integer : BT_EAGAIN;

    freeReplyObject(reply);
    return ret;
}

static void next_shard(struct bt_backfill *bf)
{
    bf->shard++;
    bf->index = 0;
    bf->cursor[0] = '\0';
    bf->checked = false;
}

/* Moves the pass on once a scan ended; marks the shard done after its last
 * index (a mark Redis did not take: that index is scanned again). */
static void next_index(struct bt_backfill *bf, struct bt_store *store, const char *kp)
{
    const struct pass *p = &passes[bf->kind];
    redisReply *set;

    bf->cursor[0] = '\0';
    if (++bf->index < p->n_indexes)
        return;
    set = bt_redis_command(bt_store_redis(store), "SET %s:%s 1", kp, p->marker);
    if (set && set->type == REDIS_REPLY_STATUS)
        next_shard(bf);
    else
        bf->index--;
    freeReplyObject(set);
}

/* At the end of a round over the shards: done, unless one not done was
 * held by another (a look again later: it may come here). */
static void round_ended(struct bt_backfill *bf)
{
    if (!bf->skipped) {
        bf->done = true;
        bt_log(BT_LOG_INFO, "%s done: added=%lld", passes[bf->kind].name,
               (long long)bf->added);
        return;
    }
    bf->shard = 0;
    bf->skipped = false;
    bf->next_ms = bt_clock_mono_ms() + BT_BACKFILL_AGAIN_MS;
}

int bt_backfill_step(struct bt_backfill *bf, const struct bt_config *cfg,
                     struct bt_store *store, const struct bt_shard_lease *lease)
{
    const struct pass *p = &passes[bf->kind];
    char kpbuf[BT_STORE_KP_SIZE];
    const char *kp;
    redisReply *scan = NULL;
    int ret = BT_EAGAIN;

    if (bf->done || bt_clock_mono_ms() < bf->next_ms)
        return 0;
    if (bf->kind == BT_BACKFILL_RETENTION && bt_store_sharded(store)) {
        bf->done = true;
        return 0;
    }
    bf->next_ms = bt_clock_mono_ms() + BT_BACKFILL_PACE_MS;
    if (bf->shard >= bt_store_shards(store)) {
        round_ended(bf);
        return 0;
    }
    kp = bt_store_shard_kp(store, bf->shard, kpbuf, sizeof(kpbuf));
    if (!bf->checked) {
        if ((ret = marked(store, kp, p)) < 0)
            return ret;
        bf->checked = true;
        if (ret == 1 || !bt_shard_lease_holds(lease, bf->shard)) {
            bf->skipped = bf->skipped || ret == 0;
            next_shard(bf);
        }
        return 0;
    }
    scan = bt_redis_command(bt_store_redis(store), "ZSCAN %s:idx:%s %s COUNT %d", kp,
                            p->indexes[bf->index], bf->cursor[0] ? bf->cursor : "0",
                            BT_BACKFILL_BATCH);
    if (!scan || scan->type != REDIS_REPLY_ARRAY || scan->elements != 2 ||
        scan->element[1]->type != REDIS_REPLY_ARRAY)
        goto out;
    if ((ret = scan->element[1]->elements
                   ? hand_over(bf, cfg, store, kp, scan->element[1])
                   : 0) < 0)
        goto out;
    bf->added += ret;
    snprintf(bf->cursor, sizeof(bf->cursor), "%s", scan->element[0]->str);
    if (!strcmp(bf->cursor, "0"))
        next_index(bf, store, kp);
out:
    freeReplyObject(scan);
    return ret;
}
