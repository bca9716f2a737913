/* `baton concurrency set KEY N | get KEY | list`: reads and tunes the
 * concurrency limits in Redis (<prefix>:cc:<key>, field limit) while
 * everything runs; workers see a change at their next acquire. Shows the
 * live leases too ({<prefix>:cc:<key>}:holders). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "concurrency.h"

static const char usage_text[] =
    "usage: baton concurrency set KEY N (0: no limit) | get KEY | list\n";

/* Leases not expired on Redis's clock: "-" when Redis does not answer. */
static void count_leases(struct bt_store *store, const char *key, char *out, size_t n)
{
    char holders[600];
    redisReply *reply = bt_redis_command(bt_store_redis(store), "TIME");
    long long now;

    snprintf(out, n, "-");
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
        freeReplyObject(reply);
        return;
    }
    now = atoll(reply->element[0]->str) * 1000 + atoll(reply->element[1]->str) / 1000;
    freeReplyObject(reply);
    bt_concurrency_holders_key(bt_store_prefix(store), key, holders, sizeof(holders));
    reply = bt_redis_command(bt_store_redis(store), "ZCOUNT %s (%lld +inf", holders, now);
    if (reply && reply->type == REDIS_REPLY_INTEGER)
        snprintf(out, n, "%lld", (long long)reply->integer);
    freeReplyObject(reply);
}

static void print_limit(struct bt_store *store, const char *hash, const char *key)
{
    redisReply *reply = bt_redis_command(bt_store_redis(store), "HGET %s limit", hash);
    char in_use[32];

    count_leases(store, key, in_use, sizeof(in_use));
    printf("%s limit=%s in_use=%s\n", key,
           reply && reply->type == REDIS_REPLY_STRING ? reply->str : "-", in_use);
    freeReplyObject(reply);
}

static int set(struct bt_store *store, const char *key, const char *value)
{
    char hash[600], *end;
    long limit = strtol(value, &end, 10);
    redisReply *reply;

    if (end == value || *end || limit < 0 || limit > 1000000) {
        fprintf(stderr,
                "baton: concurrency limit \"%s\" is not an integer in [0, 1000000]\n",
                value);
        fputs(usage_text, stderr);
        return BT_EXIT_USAGE;
    }
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
        print_limit);
}

int bt_cli_concurrency(struct bt_config *cfg, int argc, char **argv)
{
    struct bt_store *store;
    int ret;

    if (argc < 2 || (!strcmp(argv[1], "set") && argc != 4) ||
        (!strcmp(argv[1], "get") && argc != 3) ||
        (!strcmp(argv[1], "list") && argc != 2) ||
        (strcmp(argv[1], "set") && strcmp(argv[1], "get") && strcmp(argv[1], "list"))) {
        fputs(usage_text, stderr);
        return BT_EXIT_USAGE;
    }
    if (!(store = bt_cli_store(cfg)))
        return BT_EXIT_UNAVAILABLE;
    if (!strcmp(argv[1], "set"))
        ret = set(store, argv[2], argv[3]);
    else if (!strcmp(argv[1], "get"))
        ret = get(store, argv[2]);
    else
        ret = list(store);
    bt_store_destroy(store);
    return ret;
}
