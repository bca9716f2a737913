/* Read-only views of instances, straight from Redis: `baton history ID
 * [--json] [--follow]`, `baton list [--status S] [--type T] [--json]`
 * (`baton describe` is describe.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "err.h"
#include "instance.h"
#include "query.h"

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
static void print_record(const char *text, bool as_json)
{
    json_t *root = bt_cli_record(text), *v;
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

int bt_cli_history_json(struct bt_store *store, const char *id, int run, json_t *rows)
{
    struct bt_history h;
    int ret = BT_EXIT_UNAVAILABLE;

    bt_history_init(&h);
    if (bt_history_read(store, id, run, 0, &h) != BT_EAGAIN) {
        for (size_t i = 0; i < h.n; i++) {
            json_t *rec = bt_cli_record(h.records[i]);
            if (rec)
                json_array_append_new(rows, rec);
        }
        ret = BT_EXIT_OK;
    }
    bt_history_release(&h);
    return ret;
}

/* Prints the records of run (0: the current one); follow: then waits for
 * new ones until the instance finishes. */
static int print_history(const struct bt_config *cfg, struct bt_store *store,
                         const char *id, int run, bool as_json, bool follow)
{
    struct bt_cli_follow f;
    struct bt_history h;
    char meta[600];
    int ret = BT_EXIT_UNAVAILABLE;

    bt_history_init(&h);
    if (!follow) {
        if (bt_history_read(store, id, run, 0, &h) != BT_EAGAIN) {
            for (size_t i = 0; i < h.n; i++)
                print_record(h.records[i], as_json);
            ret = BT_EXIT_OK;
        }
        bt_history_release(&h);
        return ret;
    }
    bt_cli_follow_init(&f, cfg);
    bt_store_key(store, id, "", meta, sizeof(meta));
    for (;;) {
        json_t *finished = NULL;
        /* records in between come at least this often: only a run's end
         * wakes a follower */
        int rc = bt_cli_follow(&f, store, id, 200, &h, &finished);
        if (rc == BT_EAGAIN)
            break;
        for (size_t i = 0; i < h.n; i++)
            print_record(h.records[i], as_json);
        fflush(stdout);
        json_decref(finished);
        if (rc == 1 || h.n)
            continue;
        redisReply *reply =
            bt_redis_command(bt_store_redis(store), "HGET %s status", meta);
        bool done = reply && reply->type == REDIS_REPLY_STRING &&
                    bt_status_final(bt_status_parse(reply->str));
        freeReplyObject(reply);
        if (done) {
            ret = BT_EXIT_OK;
            break;
        }
    }
    bt_history_release(&h);
    bt_cli_follow_release(&f);
    return ret;
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
    char key[600], list[600], suffix[64], *pos[1];
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
        kept = bt_redis_command(bt_store_redis(store), "EXISTS %s %s",
                                bt_history_key(store, id, (int)run, list, sizeof(list)),
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
    } else {
        run = 0;
    }
    ret = print_history(cfg, store, id, (int)run, as_json, follow);
out:
    if (ret == BT_EXIT_UNAVAILABLE)
        fprintf(stderr, "baton: cannot read from Redis at %s\n", cfg->redis);
    freeReplyObject(exists);
    bt_store_destroy(store);
    return ret;
}

static const char *list_status = "all", *list_type, *list_query, *list_after;
static int64_t list_limit = 100;
static bool list_json;

static const struct bt_arg list_args[] = {
    {"status", 0, BT_ARG_CHOICE, &list_status, "S", "all",
     .choices = "running|completed|failed|cancelled|terminated|blocked|paused|all",
     .help = "only instances in this status"},
    {"type", 0, BT_ARG_STR, &list_type, "TYPE", .help = "only instances of this type"},
    {"query", 0, BT_ARG_STR, &list_query, "QUERY",
     .help = "only instances that match: " BT_CLI_QUERY_TERMS},
    {"limit", 0, BT_ARG_INT, &list_limit, "N", "100", 1, 1000000,
     .help = "at most this many, newest first"},
    {"after", 0, BT_ARG_STR, &list_after, "CURSOR",
     .help = "the next page: where the previous page ended (it prints the cursor)"},
    {"json", 0, BT_ARG_BOOL, &list_json,
     .help = "one JSON object per instance and line (JSON lines), no header"},
    {NULL},
};

struct page {
    int64_t shown;
};

json_t *bt_cli_list_row(const struct bt_query_row *row)
{
    char created[40], updated[40];

    return json_pack("{s:s, s:s, s:s?, s:s, s:s?, s:O?}", "id", row->id, "type",
                     row->type, "status", row->status, "created",
                     bt_cli_time(row->created, created, sizeof(created)), "updated",
                     row->updated ? bt_cli_time(row->updated, updated, sizeof(updated))
                                  : NULL,
                     "attributes", row->attrs);
}

static bool print_row(const struct bt_query_row *row, void *arg)
{
    struct page *page = arg;
    char when[40];

    if (list_json)
        bt_cli_print_json(bt_cli_list_row(row));
    else
        printf("%-40s %-24s %-11s %s\n", row->id, row->type,
               row->status ? row->status : "?",
               bt_cli_time(row->created, when, sizeof(when)));
    return ++page->shown < list_limit;
}

static const struct bt_cmd list_cmd = {
    .name = "baton list",
    .synopsis = "[--status S] [--type T] [--query QUERY] [--limit N] [--after CURSOR] "
                "[--json]",
    .about = "List instances, newest first, a page at a time.",
    .args = list_args,
    .settings = (const char *const[]){BT_CLI_REDIS_SETTINGS, NULL},
};

int bt_cli_list(struct bt_config *cfg, int argc, char **argv)
{
    struct bt_query q = {0};
    struct page page = {0};
    struct bt_store *store = NULL;
    char next[64];
    int n_pos, ret;

    if ((ret = bt_cli_args(&list_cmd, argc, argv, NULL, &n_pos)) >= 0)
        return ret;
    if ((strcmp(list_status, "all") &&
         (ret = bt_query_add(&q, "status", "=", list_status))) ||
        (list_type && (ret = bt_query_add(&q, "type", "=", list_type))) ||
        (list_query && (ret = bt_query_parse(&q, list_query))))
        goto out;
    ret = BT_EXIT_UNAVAILABLE;
    if (!(store = bt_cli_store(cfg)))
        goto out;
    if (!list_json)
        printf("%-40s %-24s %-11s %s\n", "ID", "TYPE", "STATUS", "CREATED");
    if (bt_query_run(store, &q, list_after, print_row, &page, next, sizeof(next))) {
        fprintf(stderr, "baton: cannot read from Redis at %s\n", cfg->redis);
        goto out;
    }
    fflush(stdout); /* the rows before the hint, where both go to one file */
    if (next[0])
        fprintf(stderr, "more: the next page is --after %s\n", next);
    ret = BT_EXIT_OK;
out:
    bt_query_release(&q);
    bt_store_destroy(store);
    return ret;
}
