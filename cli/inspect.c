/* Read-only views of instances, straight from Redis: `baton history ID
 * [--json] [--follow]`, `baton list [--status S] [--type T] [--json]`
 * (`baton describe` is describe.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "journal.h"

json_t *bt_cli_record(const char *text)
{
    json_t *root = json_loads(text, 0, NULL);
    const json_t *ts = json_object_get(root, "ts");
    char when[40];

    if (!json_is_integer(ts)) {
        json_decref(root);
        return NULL;
    }
    bt_cli_time(json_integer_value(ts), when, sizeof(when));
    json_object_set_new(root, "ts", json_string(when));
    return root;
}

/* One history record: as JSON with its time in RFC 3339 like every --json
 * output, or as a line of text. */
static void print_record(const char *text, void *arg)
{
    json_t *root = bt_cli_record(text), *v;
    bool as_json = *(const bool *)arg;
    const char *k;

    if (!root) {
        printf("%s\n", text);
        return;
    }
    if (as_json) {
        bt_cli_print_json(root);
        return;
    }
    printf("%s  %-20s", json_string_value(json_object_get(root, "ts")),
           json_string_value(json_object_get(root, "ev")));
    json_object_foreach(root, k, v)
    {
        char *s;
        if (!strcmp(k, "ts") || !strcmp(k, "ev"))
            continue;
        s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        printf(" %s=%s", k, s);
        free(s);
    }
    printf("\n");
    json_decref(root);
}

int bt_cli_history_each(struct bt_store *store, const char *id, const char *suffix,
                        bool follow, void (*fn)(const char *text, void *arg), void *arg)
{
    struct bt_redis *r = bt_store_redis(store);
    char key[600], meta[600], after[64] = "0-0";

    bt_store_key(store, id, suffix, key, sizeof(key));
    bt_store_key(store, id, "", meta, sizeof(meta));
    for (;;) {
        redisReply *reply = bt_redis_command(r, "XREAD COUNT 1000 BLOCK %d STREAMS %s %s",
                                             follow ? 1000 : 1, key, after);
        if (!reply || reply->type == REDIS_REPLY_ERROR) {
            freeReplyObject(reply);
            return BT_EXIT_UNAVAILABLE;
        }
        /* [[key, [[id, [field, value]], ...]]] or nil when nothing new */
        size_t got = 0;
        if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1) {
            const redisReply *entries = reply->element[0]->element[1];
            got = entries->elements;
            for (size_t i = 0; i < entries->elements; i++) {
                const redisReply *entry = entries->element[i];
                snprintf(after, sizeof(after), "%s", entry->element[0]->str);
                /* one entry per decision: "e" record pairs */
                for (size_t f = 1; f < entry->element[1]->elements; f += 2)
                    fn(entry->element[1]->element[f]->str, arg);
            }
            fflush(stdout);
        }
        freeReplyObject(reply);
        if (got)
            continue;
        if (!follow)
            return BT_EXIT_OK;
        reply = bt_redis_command(r, "HGET %s status", meta);
        bool done = reply && reply->type == REDIS_REPLY_STRING &&
                    bt_status_final(bt_status_parse(reply->str));
        freeReplyObject(reply);
        if (done)
            return BT_EXIT_OK;
    }
}

static bool history_json, history_follow;
static int64_t history_run;

static const struct bt_arg history_args[] = {
    {"json", 0, BT_ARG_BOOL, &history_json,
     .help = "one JSON record per line, as stored"},
    {"follow", 'f', BT_ARG_BOOL, &history_follow,
     .help = "keep printing new records until the instance finishes"},
    {"run", 0, BT_ARG_INT, &history_run, "N", "the current run", 1, INT32_MAX,
     .help = "an earlier run of an instance that continued as new"},
    {NULL},
};

static const struct bt_cmd history_cmd = {
    .name = "baton history",
    .synopsis = "ID [--json] [--follow] [--run N]",
    .about = "Print an instance's audit log: every event applied and command issued.",
    .args = history_args,
    .settings = (const char *const[]){BT_CLI_REDIS_SETTINGS, NULL},
    .min_pos = 1,
    .max_pos = 1,
};

int bt_cli_history(struct bt_config *cfg, int argc, char **argv)
{
    struct bt_store *store;
    redisReply *exists = NULL;
    const char *id;
    bool as_json, follow;
    char key[600], suffix[64] = ":history", *pos[1];
    long run;
    int n_pos, ret;

    if ((ret = bt_cli_args(&history_cmd, argc, argv, pos, &n_pos)) >= 0)
        return ret;
    ret = BT_EXIT_UNAVAILABLE;
    id = pos[0];
    as_json = history_json;
    follow = history_follow;
    run = (long)history_run;
    if (!(store = bt_cli_store(cfg)))
        return ret;
    exists = bt_redis_command(bt_store_redis(store), "HGET %s run",
                              bt_store_key(store, id, "", key, sizeof(key)));
    if (!exists || exists->type == REDIS_REPLY_ERROR)
        goto out;
    if (exists->type != REDIS_REPLY_STRING) {
        bt_cli_gone(store, id);
        ret = BT_EXIT_FAIL;
        goto out;
    }
    if (run && run != atol(exists->str)) {
        redisReply *kept;
        snprintf(suffix, sizeof(suffix), ":history:%ld", run);
        kept = bt_redis_command(bt_store_redis(store), "EXISTS %s",
                                bt_store_key(store, id, suffix, key, sizeof(key)));
        bool there = kept && kept->type == REDIS_REPLY_INTEGER && kept->integer;
        freeReplyObject(kept);
        if (!there) {
            fprintf(stderr,
                    "baton: %s has no run %ld kept (it is on run %s; an earlier run "
                    "is archived to the archive topic and deleted when its retention "
                    "ends)\n",
                    id, run, exists->str);
            ret = BT_EXIT_FAIL;
            goto out;
        }
        follow = false;
    }
    ret = bt_cli_history_each(store, id, suffix, follow, print_record, &as_json);
out:
    if (ret == BT_EXIT_UNAVAILABLE)
        fprintf(stderr, "baton: cannot read from Redis at %s\n", cfg->redis);
    freeReplyObject(exists);
    bt_store_destroy(store);
    return ret;
}

static const char *list_status = "all", *list_type;
static int64_t list_limit = 100;
static bool list_json;

static const struct bt_arg list_args[] = {
    {"status", 0, BT_ARG_CHOICE, &list_status, "S", "all",
     .choices = "running|completed|failed|cancelled|terminated|blocked|all",
     .help = "only instances in this status"},
    {"type", 0, BT_ARG_STR, &list_type, "TYPE", .help = "only instances of this type"},
    {"limit", 0, BT_ARG_INT, &list_limit, "N", "100", 1, 1000000,
     .help = "at most this many, newest first"},
    {"json", 0, BT_ARG_BOOL, &list_json,
     .help = "one JSON object per instance and line (JSON lines), no header"},
    {NULL},
};

static const struct bt_cmd list_cmd = {
    .name = "baton list",
    .synopsis = "[--status S] [--type T] [--limit N] [--json]",
    .about = "List instances, newest first.",
    .args = list_args,
    .settings = (const char *const[]){BT_CLI_REDIS_SETTINGS, NULL},
};

/* Appends to rows the instances of page (HMGET replies in ids' order) that
 * type (NULL: any) keeps, at most limit - the rows there; returns how many
 * of ids it went through, all of them when rows did not fill up. */
static size_t keep(struct bt_store *store, const redisReply *ids, const char *type,
                   json_t *rows, long limit, int *err)
{
    size_t i, used = ids->elements;
    char created[40], updated[40];

    for (i = 0; i < ids->elements; i++) {
        redisReply *m = NULL;
        if (bt_redis_reply(bt_store_redis(store), &m)) {
            *err = BT_EXIT_UNAVAILABLE;
            return i; /* the connection is unusable: the rest is never read */
        }
        if ((long)json_array_size(rows) < limit && m->type == REDIS_REPLY_ARRAY &&
            m->elements == 4 && m->element[0]->str &&
            (!type || !strcmp(type, m->element[0]->str))) {
            const char *u = m->element[3]->str;
            json_array_append_new(
                rows,
                json_pack(
                    "{s:s, s:s, s:s?, s:s, s:s?}", "id", ids->element[i]->str, "type",
                    m->element[0]->str, "status", m->element[1]->str, "created",
                    bt_cli_time(
                        strtoll(m->element[2]->str ? m->element[2]->str : "0", NULL, 10),
                        created, sizeof(created)),
                    "updated",
                    u ? bt_cli_time(strtoll(u, NULL, 10), updated, sizeof(updated))
                      : NULL));
            if ((long)json_array_size(rows) == limit && used == ids->elements)
                used = i + 1;
        }
        freeReplyObject(m);
    }
    return used;
}

int bt_cli_list_page(struct bt_store *store, const char *status, const char *type,
                     long long cursor, long limit, json_t *rows, long long *next)
{
    /* with a type filter, look at this many ids per call at most: a page
     * costs a bounded time however rare the type is; the cursor goes on */
    const long long chunk = limit < 500 ? 500 : limit, budget = 20000;
    char key[600], mkey[600];
    int err = BT_EXIT_OK;

    snprintf(key, sizeof(key), "%s:idx:%s", bt_store_prefix(store), status);
    *next = cursor;
    while ((long)json_array_size(rows) < limit && *next - cursor < budget) {
        redisReply *ids =
            bt_redis_command(bt_store_redis(store), "ZREVRANGE %s %lld %lld", key, *next,
                             *next + chunk - 1);
        if (!ids || ids->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(ids);
            return BT_EXIT_UNAVAILABLE;
        }
        for (size_t i = 0; i < ids->elements; i++) {
            const char *argv[] = {"HMGET", mkey, "type", "status", "created", "updated"};
            bt_store_key(store, ids->element[i]->str, "", mkey, sizeof(mkey));
            bt_redis_append_argv(bt_store_redis(store), 6, argv, NULL);
        }
        size_t used = keep(store, ids, type, rows, limit, &err);
        /* the index's end reached, and every id of it looked at */
        bool end = (long long)ids->elements < chunk && used == ids->elements;
        *next += (long long)used;
        freeReplyObject(ids);
        if (err)
            return err;
        if (end) {
            *next = -1;
            break;
        }
    }
    return BT_EXIT_OK;
}

int bt_cli_list(struct bt_config *cfg, int argc, char **argv)
{
    struct bt_store *store;
    json_t *rows = NULL, *row;
    long long next = 0;
    size_t i;
    int n_pos, ret;

    if ((ret = bt_cli_args(&list_cmd, argc, argv, NULL, &n_pos)) >= 0)
        return ret;
    if (!(store = bt_cli_store(cfg)))
        return BT_EXIT_UNAVAILABLE;
    rows = json_array();
    while (next >= 0 && (long)json_array_size(rows) < list_limit &&
           !(ret = bt_cli_list_page(store, list_status, list_type, next, (long)list_limit,
                                    rows, &next)))
        ;
    if (ret == BT_EXIT_UNAVAILABLE)
        fprintf(stderr, "baton: cannot read from Redis at %s\n", cfg->redis);
    else if (!list_json)
        printf("%-40s %-24s %-11s %s\n", "ID", "TYPE", "STATUS", "CREATED");
    json_array_foreach(rows, i, row)
    {
        if (ret)
            break;
        if (list_json)
            bt_cli_print_json(json_incref(row));
        else
            printf("%-40s %-24s %-11s %s\n",
                   json_string_value(json_object_get(row, "id")),
                   json_string_value(json_object_get(row, "type")),
                   json_string_value(json_object_get(row, "status"))
                       ? json_string_value(json_object_get(row, "status"))
                       : "?",
                   json_string_value(json_object_get(row, "created")));
    }
    json_decref(rows);
    bt_store_destroy(store);
    return ret;
}
