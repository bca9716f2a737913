/* `baton stats [--watch]`: a summary computed from Redis — instances by type
 * and status, completions per second over the last minute, pending timers,
 * the outbox index (and how much of it holds old unsent commands), finished
 * runs waiting for their retention to end, and the dead-letter count on
 * Kafka. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "journal.h"
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
    redisReply *reply = bt_redis_command(bt_store_redis(store), "ZCOUNT %s:%s %s %s",
                                         bt_store_prefix(store), suffix, min, max);
    long long n = reply && reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1;

    freeReplyObject(reply);
    return n;
}

/* Messages on the dead-letter topic: the sum of its partitions' high
 * watermarks (what was ever written there). -1 when Kafka does not answer. */
static long long dead_letters(const struct bt_config *cfg)
{
    char errstr[256], topic[300];
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_t *rk = bt_kafka_producer_new(cfg, errstr, sizeof(errstr));
    rd_kafka_topic_t *rkt;
    long long total = -1;

    if (!rk)
        return -1;
    bt_kafka_topic(cfg, "dlq", topic, sizeof(topic));
    rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (rd_kafka_metadata(rk, 0, rkt, &md, 3000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        md->topic_cnt == 1 && !md->topics[0].err) {
        total = 0;
        for (int p = 0; p < md->topics[0].partition_cnt; p++) {
            int64_t lo, hi;
            if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 3000)) {
                total = -1;
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

static int print_stats(const struct bt_config *cfg, struct bt_store *store)
{
    struct bt_redis *r = bt_store_redis(store);
    redisReply *ids =
        bt_redis_command(r, "ZRANGE %s:idx:all 0 -1", bt_store_prefix(store));
    json_t *by_type = json_object();
    char now_s[32], minute_ago[32];
    struct timespec ts;
    const char *type;
    json_t *counts;

    if (!ids || ids->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(ids);
        json_decref(by_type);
        return BT_EXIT_UNAVAILABLE;
    }
    for (size_t i = 0; i < ids->elements; i++) {
        char key[600];
        const char *argv[] = {"HMGET", key, "type", "status"};
        bt_store_key(store, ids->element[i]->str, "", key, sizeof(key));
        bt_redis_append_argv(r, 4, argv, NULL);
    }
    for (size_t i = 0; i < ids->elements; i++) {
        redisReply *m = NULL;
        if (bt_redis_reply(r, &m))
            break;
        if (m->type == REDIS_REPLY_ARRAY && m->elements == 2 && m->element[0]->str &&
            m->element[1]->str) {
            json_t *t = json_object_get(by_type, m->element[0]->str);
            if (!t)
                json_object_set_new(by_type, m->element[0]->str, t = json_object());
            json_object_set_new(
                t, m->element[1]->str,
                json_integer(json_integer_value(json_object_get(t, m->element[1]->str)) +
                             1));
        }
        freeReplyObject(m);
    }
    printf("%-28s %9s %9s %9s %9s %9s %9s\n", "TYPE", "running", "completed", "failed",
           "blocked", "cancelled", "total");
    json_object_foreach(by_type, type, counts)
    {
        json_int_t total = 0;
        const char *k;
        json_t *v;
        json_object_foreach(counts, k, v) total += json_integer_value(v);
        printf("%-28s %9lld %9lld %9lld %9lld %9lld %9lld\n", type,
               (long long)json_integer_value(json_object_get(counts, "running")),
               (long long)json_integer_value(json_object_get(counts, "completed")),
               (long long)json_integer_value(json_object_get(counts, "failed")),
               (long long)json_integer_value(json_object_get(counts, "blocked")),
               (long long)(json_integer_value(json_object_get(counts, "cancelled")) +
                           json_integer_value(json_object_get(counts, "terminated"))),
               (long long)total);
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    long long now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    snprintf(now_s, sizeof(now_s), "%lld", now);
    snprintf(minute_ago, sizeof(minute_ago), "%lld", now - 60000);
    long long done = zcount(store, "idx:completed", minute_ago, now_s) +
                     zcount(store, "idx:failed", minute_ago, now_s);
    printf("\nfinished in the last minute: %lld (%.1f/s)\n", done, (double)done / 60.0);
    printf("timers pending: %lld (due now: %lld, being fired: %lld)\n",
           zcount(store, "timers", "-inf", "+inf"),
           zcount(store, "timers", "-inf", now_s),
           zcount(store, "timers:leased", "-inf", "+inf"));
    /* workers empty an outbox without unindexing it; the scheduler's sweep
     * drops it a few seconds later: what is older holds unsent commands */
    char stale[32];
    snprintf(stale, sizeof(stale), "%lld", now - 10000);
    printf("instances in the outbox index: %lld (with commands unsent for 10 s or more, "
           "or no scheduler running: %lld)\n",
           zcount(store, "outbox", "-inf", "+inf"),
           zcount(store, "outbox", "-inf", stale));
    printf("finished runs kept until their retention ends: %lld (due for archive and "
           "deletion now: %lld, being archived: %lld)\n",
           zcount(store, "retention", "-inf", "+inf"),
           zcount(store, "retention", "-inf", now_s),
           zcount(store, "retention:leased", "-inf", "+inf"));
    long long dlq = dead_letters(cfg);
    if (dlq >= 0)
        printf("dead letters: %lld\n", dlq);
    else
        printf("dead letters: unknown (Kafka at %s does not answer)\n", cfg->brokers);
    fflush(stdout);
    freeReplyObject(ids);
    json_decref(by_type);
    return BT_EXIT_OK;
}

int bt_cli_stats(struct bt_config *cfg, int argc, char **argv)
{
    struct bt_store *store;
    bool watch = argc == 2 && !strcmp(argv[1], "--watch");
    int ret;

    if (argc > 2 || (argc == 2 && !watch)) {
        fprintf(stderr, "usage: baton stats [--watch]\n");
        return BT_EXIT_USAGE;
    }
    if (!(store = bt_cli_store(cfg)))
        return BT_EXIT_UNAVAILABLE;
    signal(SIGINT, on_signal);
    do {
        if (watch)
            printf("\033[H\033[2J");
        ret = print_stats(cfg, store);
        if (watch)
            sleep(2);
    } while (watch && !stopping && ret == BT_EXIT_OK);
    bt_store_destroy(store);
    return ret;
}
