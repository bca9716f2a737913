/* `baton stats [--watch] [--json]`: a summary computed from Redis — instances by type
 * and status, completions per second over the last minute, pending timers,
 * the outbox index (and how much of it holds old unsent commands), finished
 * runs waiting for their retention to end, and the dead-letter count on
 * Kafka. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "cli.h"
#include "err.h"
#include "instance.h"
#include "kafka.h"

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static long long zcount(struct bt_store *store, const char *suffix, const char *min,
                        const char *max)
{
    long long n = 0;

    for (int shard = 0; shard < bt_store_shards(store) && n >= 0; shard++) {
        char kp[BT_STORE_KP_SIZE];
        redisReply *reply = bt_redis_command(
            bt_store_redis(store), "ZCOUNT %s:%s %s %s",
            bt_store_shard_kp(store, shard, kp, sizeof(kp)), suffix, min, max);
        n = reply && reply->type == REDIS_REPLY_INTEGER ? n + reply->integer : -1;
        freeReplyObject(reply);
    }
    return n;
}

/* Messages on the dead-letter topic: the sum of its partitions' high
 * watermarks (what was ever written there). BT_EAGAIN when Kafka does not
 * answer. */
static long long dead_letters(const struct bt_config *cfg)
{
    char errstr[256], topic[300];
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_t *rk = bt_kafka_producer_new(cfg, errstr, sizeof(errstr));
    rd_kafka_topic_t *rkt;
    long long total = BT_EAGAIN;

    if (!rk)
        return BT_EAGAIN;
    bt_kafka_topic(cfg, "dlq", topic, sizeof(topic));
    rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (rd_kafka_metadata(rk, 0, rkt, &md, 3000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        md->topic_cnt == 1 && !md->topics[0].err) {
        total = 0;
        for (int p = 0; p < md->topics[0].partition_cnt; p++) {
            int64_t lo, hi;
            if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 3000)) {
                total = BT_EAGAIN;
                break;
            }
            total += hi;
        }
    }
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return total;
}

/* Adds n instances of type with status into types. */
static void add_count(json_t *types, const char *type, const char *status, json_int_t n)
{
    json_t *t = json_object_get(types, type);

    if (!t)
        json_object_set_new(types, type, t = json_object());
    json_object_set_new(t, status,
                        json_integer(json_integer_value(json_object_get(t, status)) + n));
}

/* Shard kp's counts by type and status (commit.lua keeps them) into types,
 * once the scheduler's pass counted the instances an older baton started
 * (the marker <kp>:counted, backfill.h). 1 read, 0 not counted yet,
 * BT_EAGAIN. */
static int read_counts(struct bt_redis *r, const char *kp, json_t *types)
{
    redisReply *marker = bt_redis_command(r, "EXISTS %s:counted", kp), *h = NULL;
    int ret = BT_EAGAIN;

    if (!marker || marker->type != REDIS_REPLY_INTEGER)
        goto out;
    ret = 0;
    if (marker->integer != 1)
        goto out;
    h = bt_redis_command(r, "HGETALL %s:counts", kp);
    ret = BT_EAGAIN;
    if (!h || h->type != REDIS_REPLY_ARRAY)
        goto out;
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const char *field = h->element[i]->str, *bar = strrchr(field, '|');
        char type[256];
        if (!bar || (size_t)(bar - field) >= sizeof(type))
            continue;
        snprintf(type, sizeof(type), "%.*s", (int)(bar - field), field);
        add_count(types, type, bar + 1, strtoll(h->element[i + 1]->str, NULL, 10));
    }
    ret = 1;
out:
    freeReplyObject(marker);
    freeReplyObject(h);
    return ret;
}

#define SCAN_PAGE 1000

/* Shard kp's instances counted from their metas, a page of its index at a
 * time (until the scheduler's pass is done): false when Redis does not
 * answer. */
static bool scan_counts(struct bt_store *store, const char *kp, json_t *types)
{
    struct bt_redis *r = bt_store_redis(store);

    for (long long from = 0;; from += SCAN_PAGE) {
        redisReply *ids = bt_redis_command(r, "ZRANGE %s:idx:all %lld %lld", kp, from,
                                           from + SCAN_PAGE - 1);
        bool ok = ids && ids->type == REDIS_REPLY_ARRAY;
        size_t n = ok ? ids->elements : 0, sent = 0, got = 0;

        for (; sent < n; sent++) {
            char key[600];
            const char *argv[] = {"HMGET", key, "type", "status"};
            bt_store_key(store, ids->element[sent]->str, "", key, sizeof(key));
            if (bt_redis_append_argv(r, 4, argv, NULL))
                break;
        }
        /* every reply read, even past a lost one: the batch ends clean */
        for (size_t i = 0; i < sent; i++) {
            redisReply *m = NULL;
            if (bt_redis_reply(r, &m))
                continue;
            got++;
            if (m->type == REDIS_REPLY_ARRAY && m->elements == 2 && m->element[0]->str &&
                m->element[1]->str)
                add_count(types, m->element[0]->str, m->element[1]->str, 1);
            freeReplyObject(m);
        }
        freeReplyObject(ids);
        if (!ok || got < n)
            return false;
        if (n < SCAN_PAGE)
            return true;
    }
}

/* Instances by type and status: {"<type>": {"<status>": n, ...}, ...}, or
 * NULL when Redis does not answer. */
static json_t *by_type(struct bt_store *store)
{
    json_t *types = json_object();

    for (int shard = 0; shard < bt_store_shards(store); shard++) {
        char kp[BT_STORE_KP_SIZE];
        const char *p = bt_store_shard_kp(store, shard, kp, sizeof(kp));
        int counted = read_counts(bt_store_redis(store), p, types);

        if (counted < 0 || (counted == 0 && !scan_counts(store, p, types))) {
            json_decref(types);
            return NULL;
        }
    }
    return types;
}

/* Every count of every status, 0 when none, and their total. */
static json_t *type_counts(const json_t *counts)
{
    static const char *const statuses[] = {
        "running", "completed", "failed", "cancelled", "terminated", "blocked", "paused"};
    json_t *row = json_object();
    json_int_t total = 0;
    const char *k;
    json_t *v;

    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
        json_object_set_new(
            row, statuses[i],
            json_integer(json_integer_value(json_object_get(counts, statuses[i]))));
    json_object_foreach((json_t *)(uintptr_t)counts, k, v) total += json_integer_value(v);
    json_object_set_new(row, "total", json_integer(total));
    return row;
}

static json_t *count_or_null(long long n)
{
    return n >= 0 ? json_integer(n) : json_null();
}

/* The model both outputs print; NULL when Redis does not answer. */
static json_t *model(const struct bt_config *cfg, struct bt_store *store)
{
    json_t *types = by_type(store), *root, *counts;
    char now_s[32], minute_ago[32], stale[32];
    const char *type;
    long long now = bt_clock_now_ms();

    if (!types)
        return NULL;
    json_object_foreach(types, type, counts)
        json_object_set_new(types, type, type_counts(counts));
    snprintf(now_s, sizeof(now_s), "%lld", now);
    snprintf(minute_ago, sizeof(minute_ago), "%lld", now - 60000);
    /* workers empty an outbox without unindexing it; the scheduler's sweep
     * drops it a few seconds later: what is older holds unsent commands */
    snprintf(stale, sizeof(stale), "%lld", now - 10000);
    root = json_pack(
        "{s:o, s:I, s:{s:o, s:o, s:o}, s:{s:o, s:o}, s:{s:o, s:o, s:o}, s:o}", "types",
        types, "finished_last_minute",
        (json_int_t)(zcount(store, "idx:completed", minute_ago, now_s) +
                     zcount(store, "idx:failed", minute_ago, now_s)),
        "timers", "pending", count_or_null(zcount(store, "timers", "-inf", "+inf")),
        "due", count_or_null(zcount(store, "timers", "-inf", now_s)), "leased",
        count_or_null(zcount(store, "timers:leased", "-inf", "+inf")), "outbox",
        "instances", count_or_null(zcount(store, "outbox", "-inf", "+inf")), "stale",
        count_or_null(zcount(store, "outbox", "-inf", stale)), "retention", "kept",
        count_or_null(zcount(store, "retention", "-inf", "+inf")), "due",
        count_or_null(zcount(store, "retention", "-inf", now_s)), "archiving",
        count_or_null(zcount(store, "retention:leased", "-inf", "+inf")), "dead_letters",
        count_or_null(dead_letters(cfg)));
    return root;
}

static long long num(const json_t *root, const char *a, const char *b)
{
    const json_t *v = json_object_get(root, a);

    return (long long)json_integer_value(b ? json_object_get(v, b) : v);
}

static void print_text(const struct bt_config *cfg, const json_t *root)
{
    const char *type;
    json_t *c;
    long long done = num(root, "finished_last_minute", NULL);

    printf("%-28s %9s %9s %9s %9s %9s %9s %10s %9s\n", "TYPE", "running", "completed",
           "failed", "blocked", "paused", "cancelled", "terminated", "total");
    json_object_foreach((json_t *)(uintptr_t)json_object_get(root, "types"), type, c)
        printf("%-28s %9lld %9lld %9lld %9lld %9lld %9lld %10lld %9lld\n", type,
               num(c, "running", NULL), num(c, "completed", NULL), num(c, "failed", NULL),
               num(c, "blocked", NULL), num(c, "paused", NULL), num(c, "cancelled", NULL),
               num(c, "terminated", NULL), num(c, "total", NULL));
    printf("\nfinished in the last minute: %lld (%.1f/s)\n", done, (double)done / 60.0);
    printf("timers pending: %lld (due now: %lld, being fired: %lld)\n",
           num(root, "timers", "pending"), num(root, "timers", "due"),
           num(root, "timers", "leased"));
    printf("instances in the outbox index: %lld (with commands unsent for 10 s or more, "
           "or no scheduler running: %lld)\n",
           num(root, "outbox", "instances"), num(root, "outbox", "stale"));
    printf("finished runs kept until their retention ends: %lld (due for archive and "
           "deletion now: %lld, being archived: %lld)\n",
           num(root, "retention", "kept"), num(root, "retention", "due"),
           num(root, "retention", "archiving"));
    if (json_is_integer(json_object_get(root, "dead_letters")))
        printf("dead letters: %lld\n", num(root, "dead_letters", NULL));
    else
        printf("dead letters: unknown (Kafka at %s does not answer)\n", cfg->brokers);
}

static int print_stats(const struct bt_config *cfg, struct bt_store *store, bool json)
{
    json_t *root = model(cfg, store);

    if (!root)
        return BT_EXIT_UNAVAILABLE;
    if (json)
        bt_cli_print_json(json_incref(root));
    else
        print_text(cfg, root);
    fflush(stdout);
    json_decref(root);
    return BT_EXIT_OK;
}

static bool watch_arg, json_arg;

static const struct bt_arg stats_args[] = {
    {"watch", 0, BT_ARG_BOOL, &watch_arg,
     .help = "print it again every 2 s until Ctrl-C"},
    {"json", 0, BT_ARG_BOOL, &json_arg,
     .help = "one JSON object (with --watch, one per line every 2 s)"},
    {NULL},
};

static const struct bt_cmd stats_cmd = {
    .name = "baton stats",
    .synopsis = "[--watch] [--json]",
    .about =
        "A summary from Redis: instances by type and status, completions in the last "
        "minute, pending timers, the outbox, dead letters.",
    .args = stats_args,
    .settings = (const char *const[]){BT_CLI_REDIS_SETTINGS, BT_CLI_KAFKA_SETTINGS, NULL},
};

int bt_cli_stats(struct bt_config *cfg, int argc, char **argv)
{
    struct bt_store *store;
    bool watch;
    int n_pos, ret;

    if ((ret = bt_cli_args(&stats_cmd, argc, argv, NULL, &n_pos)) >= 0)
        return ret;
    watch = watch_arg;
    if (!(store = bt_cli_store(cfg)))
        return BT_EXIT_UNAVAILABLE;
    signal(SIGINT, on_signal);
    do {
        if (watch && !json_arg)
            printf("\033[H\033[2J");
        ret = print_stats(cfg, store, json_arg);
        /* a watch outlives a Redis restart: it says so and reads again */
        if (watch && ret == BT_EXIT_UNAVAILABLE) {
            fprintf(stderr, "baton: Redis at %s does not answer; reading again in 2 s\n",
                    cfg->redis);
            ret = BT_EXIT_OK;
        }
        if (watch) {
            fflush(stdout); /* a line as it is read, also into a pipe */
            sleep(2);
        }
    } while (watch && !stopping && ret == BT_EXIT_OK);
    bt_store_destroy(store);
    return ret;
}
