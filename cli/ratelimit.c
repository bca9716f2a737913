/* `baton ratelimit set KEY RATE/s [--burst N] | get KEY | list`: reads and
 * tunes the token buckets in Redis (<prefix>:rl:<key>) while everything runs;
 * workers see a change on their next take. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ratelimit.h"

static const char usage_text[] =
    "usage: baton ratelimit set KEY RATE[/s] [--burst N] | get KEY | list\n";

static void print_bucket(struct bt_store *store, const char *bucket, const char *key)
{
    redisReply *reply = bt_redis_command(bt_store_redis(store),
                                         "HMGET %s rate burst tokens until", bucket);
    const char *f[4] = {"-", "-", "-", "0"};

    for (size_t i = 0;
         reply && reply->type == REDIS_REPLY_ARRAY && i < 4 && i < reply->elements; i++)
        if (reply->element[i]->type == REDIS_REPLY_STRING)
            f[i] = reply->element[i]->str;
    printf("%s rate=%s/s burst=%s tokens=%s until=%s\n", key, f[0], f[1], f[2], f[3]);
    freeReplyObject(reply);
}

static int set(struct bt_store *store, int argc, char **argv)
{
    char bucket[600], *end;
    double rate;
    long burst = -1;
    redisReply *reply;

    if (argc != 4 && argc != 6)
        goto usage;
    rate = strtod(argv[3], &end);
    if (end == argv[3] || (*end && strcmp(end, "/s")) || rate <= 0)
        goto usage;
    if (argc == 6) {
        if (strcmp(argv[4], "--burst"))
            goto usage;
        burst = strtol(argv[5], &end, 10);
        if (*end || burst < 1)
            goto usage;
    }
    bt_ratelimit_key(bt_store_prefix(store), argv[2], bucket, sizeof(bucket));
    if (burst > 0)
        reply = bt_redis_command(bt_store_redis(store), "HSET %s rate %.17g burst %ld",
                                 bucket, rate, burst);
    else
        reply =
            bt_redis_command(bt_store_redis(store), "HSET %s rate %.17g", bucket, rate);
    return bt_cli_stored(store, reply, bucket, argv[2], print_bucket);
usage:
    fputs(usage_text, stderr);
    return BT_EXIT_USAGE;
}

static int get(struct bt_store *store, const char *key)
{
    char bucket[600];

    return bt_cli_show(
        store, bt_ratelimit_key(bt_store_prefix(store), key, bucket, sizeof(bucket)), key,
        "rate limit", print_bucket);
}

static int list(struct bt_store *store)
{
    char pattern[600];

    return bt_cli_scan(
        store, bt_ratelimit_key(bt_store_prefix(store), "*", pattern, sizeof(pattern)),
        print_bucket);
}

int bt_cli_ratelimit(struct bt_config *cfg, int argc, char **argv)
{
    struct bt_store *store;
    int ret;

    if (argc < 2 ||
        (strcmp(argv[1], "set") && strcmp(argv[1], "get") && strcmp(argv[1], "list")) ||
        (!strcmp(argv[1], "get") && argc != 3) ||
        (!strcmp(argv[1], "list") && argc != 2)) {
        fputs(usage_text, stderr);
        return BT_EXIT_USAGE;
    }
    if (!(store = bt_cli_store(cfg)))
        return BT_EXIT_UNAVAILABLE;
    if (!strcmp(argv[1], "set"))
        ret = set(store, argc, argv);
    else if (!strcmp(argv[1], "get"))
        ret = get(store, argv[2]);
    else
        ret = list(store);
    bt_store_destroy(store);
    return ret;
}
