/* Read-only views of instances, straight from Redis: `baton describe ID`,
 * `baton history ID [--json] [--follow]`, `baton list [--status S] [--type T]`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "journal.h"

static void print_time(int64_t ms)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    char buf[32];

    gmtime_r(&s, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    printf("%s.%03dZ", buf, (int)(ms % 1000));
}

static const char *field(const redisReply *hash, const char *name)
{
    for (size_t i = 0; i + 1 < hash->elements; i += 2)
        if (!strcmp(hash->element[i]->str, name))
            return hash->element[i + 1]->str;
    return NULL;
}

static const char *const state_names[] = {"waiting",  "attempt failed", "backing off",
                                          "retrying", "done",           "failed"};

int bt_cli_describe(struct bt_config *cfg, int argc, char **argv)
{
    struct bt_store *store;
    redisReply *meta = NULL, *journal = NULL;
    char key[600];
    int ret = BT_EXIT_UNAVAILABLE;

    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: baton describe ID\n");
        return BT_EXIT_USAGE;
    }
    if (!(store = bt_cli_store(cfg)))
        return ret;
    meta = bt_redis_command(bt_store_redis(store), "HGETALL %s",
                            bt_store_key(store, argv[1], "", key, sizeof(key)));
    journal =
        bt_redis_command(bt_store_redis(store), "HGETALL %s",
                         bt_store_key(store, argv[1], ":journal", key, sizeof(key)));
    if (!meta || !journal || meta->type != REDIS_REPLY_ARRAY ||
        journal->type != REDIS_REPLY_ARRAY)
        goto out;
    if (meta->elements == 0) {
        bt_cli_gone(store, argv[1]);
        ret = BT_EXIT_FAIL;
        goto out;
    }
    printf("id:       %s\ntype:     %s\nstatus:   %s\n", argv[1], field(meta, "type"),
           field(meta, "status"));
    printf("created:  ");
    print_time(strtoll(field(meta, "created") ? field(meta, "created") : "0", NULL, 10));
    printf("\nupdated:  ");
    print_time(strtoll(field(meta, "updated") ? field(meta, "updated") : "0", NULL, 10));
    printf("\ninput:    %s\n", field(meta, "input") ? field(meta, "input") : "null");
    if (field(meta, "queue"))
        printf("queue:    %s\n", field(meta, "queue"));
    if (field(meta, "run") && strcmp(field(meta, "run"), "1"))
        printf("run:      %s (continued as new; `baton history --run N` shows earlier "
               "ones until their retention ends)\n",
               field(meta, "run"));
    if (field(meta, "parent"))
        printf("parent:   %s (seq %s)\n", field(meta, "parent"), field(meta, "pseq"));
    if (field(meta, "result") && *field(meta, "result"))
        printf("result:   %s\n", field(meta, "result"));
    if (field(meta, "error") && *field(meta, "error"))
        printf("error:    %s\n", field(meta, "error"));
    if (field(meta, "signals") && *field(meta, "signals"))
        printf("buffered signals: %s\n", field(meta, "signals"));
    if (field(meta, "cancel") && field(meta, "cancel")[0] == '1')
        printf("cancellation requested\n");

    size_t n = journal->elements / 2;
    long long base = field(meta, "base") ? strtoll(field(meta, "base"), NULL, 10) : 0;
    struct bt_entry *entries = calloc(n + 1, sizeof(*entries));
    for (size_t i = 0; i < journal->elements; i += 2) {
        long long seq = strtoll(journal->element[i]->str, NULL, 10) - base;
        if (seq >= 0 && (size_t)seq < n)
            bt_entry_decode(&entries[seq], journal->element[i + 1]->str,
                            journal->element[i + 1]->len);
    }
    printf("steps:    %zu\n", n);
    printf("  %-4s %-8s %-24s %-15s %-7s %s\n", "SEQ", "KIND", "NAME", "STATE", "ATTEMPT",
           "DUE / VALUE");
    for (size_t i = 0; i < n; i++) {
        const struct bt_entry *e = &entries[i];
        char kind[2] = {e->kind, 0};
        if (!e->name)
            continue;
        printf("  %-4lld %-8s %-24s %-15s %-7d ", base + (long long)i,
               e->kind == 'a'   ? "activity"
               : e->kind == 'c' ? "child"
               : e->kind == 't' ? "sleep"
               : e->kind == 's' ? "signal"
               : e->kind == 'x' ? "recorded"
               : e->kind == 'p' ? "patch"
                                : kind,
               e->name, e->state < 6 ? state_names[e->state] : "?", e->attempt);
        if (e->state != BT_ST_DONE && e->state != BT_ST_FAILED && e->due) {
            printf("due ");
            print_time(e->due);
        } else if (e->error && e->state != BT_ST_DONE) {
            char *s = json_dumps(e->error, JSON_COMPACT);
            printf("%s", s);
            free(s);
        } else if (e->value) {
            char *s = json_dumps(e->value, JSON_COMPACT | JSON_ENCODE_ANY);
            printf("%.60s%s", s, strlen(s) > 60 ? "..." : "");
            free(s);
        }
        printf("\n");
    }
    for (size_t i = 0; i < n; i++)
        bt_entry_release(&entries[i]);
    free(entries);
    ret = BT_EXIT_OK;
out:
    if (ret == BT_EXIT_UNAVAILABLE)
        fprintf(stderr, "baton: cannot read from Redis at %s\n", cfg->redis);
    freeReplyObject(meta);
    freeReplyObject(journal);
    bt_store_destroy(store);
    return ret;
}

static void print_record(const char *text, bool as_json)
{
    json_t *root = json_loads(text, 0, NULL);
    const char *k;
    json_t *v;

    if (as_json || !root) {
        printf("%s\n", text);
        json_decref(root);
        return;
    }
    print_time(json_integer_value(json_object_get(root, "ts")));
    printf("  %-20s", json_string_value(json_object_get(root, "ev")));
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

/* Prints the records after stream id `after` (advanced); follow: blocks for
 * new ones until the instance finishes. */
static int print_history(struct bt_store *store, const char *id, const char *suffix,
                         bool as_json, bool follow)
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
                    print_record(entry->element[1]->element[f]->str, as_json);
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

int bt_cli_history(struct bt_config *cfg, int argc, char **argv)
{
    struct bt_store *store;
    redisReply *exists = NULL;
    const char *id = NULL;
    bool as_json = false, follow = false;
    char key[600], suffix[64] = ":history";
    long run = 0;
    int ret = BT_EXIT_UNAVAILABLE;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            as_json = true;
        else if (!strcmp(argv[i], "--follow") || !strcmp(argv[i], "-f"))
            follow = true;
        else if (!strcmp(argv[i], "--run") && i + 1 < argc && (run = atol(argv[++i])) > 0)
            continue;
        else if (argv[i][0] != '-' && !id)
            id = argv[i];
        else
            id = NULL, argc = 0;
    }
    if (!id) {
        fprintf(stderr, "usage: baton history ID [--json] [--follow] [--run N]\n"
                        "  --run: an earlier run of an instance that continued as new\n");
        return BT_EXIT_USAGE;
    }
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
    ret = print_history(store, id, suffix, as_json, follow);
out:
    if (ret == BT_EXIT_UNAVAILABLE)
        fprintf(stderr, "baton: cannot read from Redis at %s\n", cfg->redis);
    freeReplyObject(exists);
    bt_store_destroy(store);
    return ret;
}

int bt_cli_list(struct bt_config *cfg, int argc, char **argv)
{
    const char *status = "all", *type = NULL;
    long limit = 100;
    struct bt_store *store;
    redisReply *ids = NULL;
    char key[600];
    int ret = BT_EXIT_UNAVAILABLE;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--status") && i + 1 < argc) {
            status = argv[++i];
            if (bt_status_parse(status) < 0 && strcmp(status, "all")) {
                fprintf(stderr,
                        "baton list: unknown status \"%s\" (running, completed, "
                        "failed, cancelled, terminated, blocked or all)\n",
                        status);
                return BT_EXIT_USAGE;
            }
        } else if (!strcmp(argv[i], "--type") && i + 1 < argc) {
            type = argv[++i];
        } else if (!strcmp(argv[i], "--limit") && i + 1 < argc) {
            limit = strtol(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, "usage: baton list [--status S] [--type T] [--limit N]\n");
            return BT_EXIT_USAGE;
        }
    }
    if (!(store = bt_cli_store(cfg)))
        return ret;
    snprintf(key, sizeof(key), "%s:idx:%s", bt_store_prefix(store), status);
    ids = bt_redis_command(bt_store_redis(store), "ZREVRANGE %s 0 %ld", key,
                           type ? -1 : limit - 1);
    if (!ids || ids->type != REDIS_REPLY_ARRAY)
        goto out;
    for (size_t i = 0; i < ids->elements; i++) {
        char mkey[600];
        const char *argv2[] = {"HMGET", mkey, "type", "status", "created"};
        bt_store_key(store, ids->element[i]->str, "", mkey, sizeof(mkey));
        bt_redis_append_argv(bt_store_redis(store), 5, argv2, NULL);
    }
    printf("%-40s %-24s %-11s %s\n", "ID", "TYPE", "STATUS", "CREATED");
    for (size_t i = 0, shown = 0; i < ids->elements; i++) {
        redisReply *m = NULL;
        if (bt_redis_reply(bt_store_redis(store), &m))
            goto out;
        if (m->type == REDIS_REPLY_ARRAY && m->elements == 3 && m->element[0]->str &&
            (!type || !strcmp(type, m->element[0]->str)) && (long)shown < limit) {
            printf("%-40s %-24s %-11s ", ids->element[i]->str, m->element[0]->str,
                   m->element[1]->str ? m->element[1]->str : "?");
            print_time(strtoll(m->element[2]->str ? m->element[2]->str : "0", NULL, 10));
            printf("\n");
            shown++;
        }
        freeReplyObject(m);
    }
    ret = BT_EXIT_OK;
out:
    if (ret == BT_EXIT_UNAVAILABLE)
        fprintf(stderr, "baton: cannot read from Redis at %s\n", cfg->redis);
    freeReplyObject(ids);
    bt_store_destroy(store);
    return ret;
}
