/* The retention backfill: ZSCAN over each status index of finished
 * instances (an entry present for the whole scan is returned at least once,
 * whatever is deleted meanwhile), each batch handed to retention_backfill.lua
 * with the retention settings, which adds the runs that are missing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backfill.h"
#include "clock.h"
#include "err.h"
#include "log.h"
#include "lua_scripts.h"

static const char *const finals[] = {"completed", "failed", "cancelled", "terminated"};
#define N_FINALS (sizeof(finals) / sizeof(finals[0]))

/* The script's arguments before the ids: keys, key prefix, the default
 * retention and the per-type rules as (type, ms) pairs. Returns how many
 * were written into argv (texts into buf), or BT_EINVAL. */
static int settings(const struct bt_config *cfg, const struct bt_store *store,
                    const char **argv, char (*buf)[300], char *keys[2])
{
    int argc = 0;

    argv[argc++] = keys[0];
    argv[argc++] = keys[1];
    argv[argc++] = bt_store_prefix(store);
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

/* Hands one ZSCAN page ([member, score, ...]) to the script. */
static int add_missing(const struct bt_config *cfg, struct bt_store *store,
                       const redisReply *page)
{
    char set[300], leased[300], *keys[2] = {set, leased};
    size_t max = 5 + 2 * cfg->n_retention_types + page->elements;
    const char **argv = calloc(max, sizeof(*argv));
    char(*buf)[300] = calloc(2 + 2 * cfg->n_retention_types, sizeof(*buf));
    redisReply *reply = NULL;
    int argc, ret = BT_ENOMEM;

    snprintf(set, sizeof(set), "%s:retention", bt_store_prefix(store));
    snprintf(leased, sizeof(leased), "%s:retention:leased", bt_store_prefix(store));
    if (!argv || !buf || (argc = settings(cfg, store, argv, buf, keys)) < 0)
        goto out;
    for (size_t i = 0; i < page->elements; i++)
        argv[argc++] = page->element[i]->str;
    reply = bt_redis_eval(bt_store_redis(store), bt_lua_retention_backfill, 2, argc, argv,
                          NULL);
    ret = reply && reply->type == REDIS_REPLY_INTEGER ? (int)reply->integer : BT_EAGAIN;
out:
    freeReplyObject(reply);
    free(argv);
    free(buf);
    return ret;
}

/* Whether the pass was done already (the marker), or BT_EAGAIN. */
static int marked(struct bt_store *store)
{
    redisReply *reply = bt_redis_command(
        bt_store_redis(store), "EXISTS %s:retention:backfilled", bt_store_prefix(store));
    int ret =
        reply && reply->type == REDIS_REPLY_INTEGER ? (int)reply->integer : BT_EAGAIN;

    freeReplyObject(reply);
    return ret;
}

/* Moves the pass on once a scan ended; marks it done after the last. */
static void next_index(struct bt_backfill *bf, struct bt_store *store)
{
    bf->cursor[0] = '\0';
    if (++bf->index < (int)N_FINALS)
        return;
    freeReplyObject(bt_redis_command(
        bt_store_redis(store), "SET %s:retention:backfilled 1", bt_store_prefix(store)));
    bf->done = true;
    bt_log(BT_LOG_INFO, "retention backfill done: added=%lld", (long long)bf->added);
}

int bt_backfill_step(struct bt_backfill *bf, const struct bt_config *cfg,
                     struct bt_store *store)
{
    redisReply *scan = NULL;
    int ret = BT_EAGAIN;

    if (bf->done || bt_clock_mono_ms() < bf->next_ms)
        return 0;
    /* sharded keys came after retention: nothing to backfill */
    if (bt_store_sharded(store)) {
        bf->done = true;
        return 0;
    }
    bf->next_ms = bt_clock_mono_ms() + BT_BACKFILL_PACE_MS;
    if (!bf->checked) {
        if ((ret = marked(store)) < 0)
            return ret;
        bf->checked = true;
        bf->done = ret == 1;
        return 0;
    }
    scan = bt_redis_command(bt_store_redis(store), "ZSCAN %s:idx:%s %s COUNT %d",
                            bt_store_prefix(store), finals[bf->index],
                            bf->cursor[0] ? bf->cursor : "0", BT_BACKFILL_BATCH);
    if (!scan || scan->type != REDIS_REPLY_ARRAY || scan->elements != 2 ||
        scan->element[1]->type != REDIS_REPLY_ARRAY)
        goto out;
    if ((ret = scan->element[1]->elements ? add_missing(cfg, store, scan->element[1])
                                          : 0) < 0)
        goto out;
    bf->added += ret;
    snprintf(bf->cursor, sizeof(bf->cursor), "%s", scan->element[0]->str);
    if (!strcmp(bf->cursor, "0"))
        next_index(bf, store);
out:
    freeReplyObject(scan);
    return ret;
}
