/* `baton concurrency set KEY N | get KEY | list`: reads and tunes the
 * concurrency limits in Redis (<prefix>:cc:<key>, field limit) while
 * everything runs; workers see a change at their next acquire. Shows the
 * live leases too ({<prefix>:cc:<key>}:holders). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "concurrency.h"
#include "err.h"

static bool json_arg;

static const char usage_text[] =
    "usage: baton concurrency set KEY N (0: no limit) | get KEY | list\n";

static const struct bt_arg concurrency_args[] = {
    {"json", 0, BT_ARG_BOOL, &json_arg,
     .help = "one JSON object per key and line (JSON lines)"},
    {NULL},
};

static const struct bt_cmd concurrency_cmd = {
    .name = "baton concurrency",
    .synopsis = "set KEY N | get KEY | list  [--json]",
    .args = concurrency_args,
    .about = "Concurrency limits (at most N steps of a key running at once across every "
             "worker; 0: no limit), read and tuned while everything runs.",
    .settings = (const char *const[]){BT_CLI_REDIS_SETTINGS, NULL},
    .min_pos = 1,
    .max_pos = 3,
};

/* Leases not expired on Redis's clock: "-" when Redis does not answer. */
static void count_leases(struct bt_store *store, const char *key, char *out, size_t n)
{
    char holders[600];
    long long now = (long long)bt_redis_now_ms(bt_store_redis(store));
    redisReply *reply;

    snprintf(out, n, "-");
    if (now < 0)
        return;
    bt_concurrency_holders_key(bt_store_prefix(store), key, holders, sizeof(holders));
    reply = bt_redis_command(bt_store_redis(store), "ZCOUNT %s (%lld +inf", holders, now);
    if (reply && reply->type == REDIS_REPLY_INTEGER)
        snprintf(out, n, "%lld", (long long)reply->integer);
    freeReplyObject(reply);
}

static json_t *integer_or_null(const char *text)
{
    char *end;
    long long x = text ? strtoll(text, &end, 10) : 0;

    return text && end != text && !*end ? json_integer(x) : json_null();
}

json_t *bt_cli_concurrency_json(struct bt_store *store, const char *hash, const char *key)
{
    redisReply *reply = bt_redis_command(bt_store_redis(store), "HGET %s limit", hash);
    const char *limit = reply && reply->type == REDIS_REPLY_STRING ? reply->str : NULL;
    char in_use[32];
    json_t *root;

    count_leases(store, key, in_use, sizeof(in_use));
    root = json_pack("{s:s, s:o, s:o}", "key", key, "limit", integer_or_null(limit),
                     "in_use", integer_or_null(in_use));
    freeReplyObject(reply);
    return root;
}

static void print_limit(struct bt_store *store, const char *hash, const char *key,
                        void *arg)
{
    json_t *root = bt_cli_concurrency_json(store, hash, key);
    const json_t *limit = json_object_get(root, "limit"),
                 *in_use = json_object_get(root, "in_use");

    (void)arg;
    if (json_arg) {
        bt_cli_print_json(root);
        return;
    }
    char l[32] = "-", u[32] = "-";
    if (json_is_integer(limit))
        snprintf(l, sizeof(l), "%lld", (long long)json_integer_value(limit));
    if (json_is_integer(in_use))
        snprintf(u, sizeof(u), "%lld", (long long)json_integer_value(in_use));
    printf("%s limit=%s in_use=%s\n", key, l, u);
    json_decref(root);
}

/* N in [0, 1000000]: 0 or BT_EINVAL having said why. */
static int parse_limit(const char *text, long *limit)
{
    char *end;

    *limit = strtol(text, &end, 10);
    if (end == text || *end || *limit < 0 || *limit > 1000000) {
        fprintf(stderr,
                "baton concurrency: limit \"%s\" is not an integer from 0 to 1000000\n",
                text);
        return BT_EINVAL;
    }
    return 0;
}

static int set(struct bt_store *store, const char *key, long limit)
{
    char hash[600];
    redisReply *reply;

    bt_concurrency_key(bt_store_prefix(store), key, hash, sizeof(hash));
    reply = bt_redis_command(bt_store_redis(store), "HSET %s limit %ld", hash, limit);
    return bt_cli_stored(store, reply, hash, key, print_limit);
}

static int get(struct bt_store *store, const char *key)
{
    char hash[600];

    return bt_cli_show(
        store, bt_concurrency_key(bt_store_prefix(store), key, hash, sizeof(hash)), key,
        "concurrency limit", print_limit);
}

static int list(struct bt_store *store)
{
    char pattern[600];

    return bt_cli_scan(
        store, bt_concurrency_key(bt_store_prefix(store), "*", pattern, sizeof(pattern)),
        print_limit, NULL);
}

int bt_cli_concurrency(struct bt_config *cfg, int argc, char **argv)
{
    struct bt_store *store;
    char *pos[3];
    long limit = 0;
    int n_pos, ret;

    if ((ret = bt_cli_args(&concurrency_cmd, argc, argv, pos, &n_pos)) >= 0)
        return ret;
    if (!(!strcmp(pos[0], "set") && n_pos == 3) &&
        !(!strcmp(pos[0], "get") && n_pos == 2) &&
        !(!strcmp(pos[0], "list") && n_pos == 1)) {
        fputs(usage_text, stderr);
        return BT_EXIT_USAGE;
    }
    if (!strcmp(pos[0], "set") && parse_limit(pos[2], &limit))
        return BT_EXIT_USAGE;
    if (!(store = bt_cli_store(cfg)))
        return BT_EXIT_UNAVAILABLE;
    if (!strcmp(pos[0], "set"))
        ret = set(store, pos[1], limit);
    else if (!strcmp(pos[0], "get"))
        ret = get(store, pos[1]);
    else
        ret = list(store);
    bt_store_destroy(store);
    return ret;
}
