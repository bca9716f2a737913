/* Batch operations: `baton cancel|terminate|signal|pause|resume|reset ...
 * --query Q [--yes]` sends the event to every instance the query matches
 * (query.h; live ones, and finished ones too for a reset), through one
 * producer, with a progress line. Without --yes it asks on a terminal and
 * refuses elsewhere, saying how many would be touched. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "clock.h"
#include "codec.h"
#include "err.h"
#include "instance.h"
#include "kafka.h"
#include "query.h"

#define CHUNK 500

struct selection {
    bool finished_too;
    const char *status; /* only those in it, or NULL */
    json_t *ids;        /* [[id, queue, type], ...] */
};

static bool select_one(const struct bt_query_row *row, void *arg)
{
    struct selection *sel = arg;

    if (sel->status ? !strcmp(row->status, sel->status)
                    : sel->finished_too || !bt_status_final(bt_status_parse(row->status)))
        json_array_append_new(sel->ids,
                              json_pack("[s, s, s]", row->id, row->queue, row->type));
    return true;
}

/* The [id, queue, type] of the instances q matches, or NULL (said why). */
static json_t *select_instances(const struct bt_config *cfg, const struct bt_query *q,
                                bool finished_too, const char *status)
{
    struct bt_store *store = bt_cli_store(cfg);
    struct selection sel = {finished_too, status, json_array()};
    char next[64];

    if (!store || bt_query_run(store, q, NULL, select_one, &sel, next, sizeof(next))) {
        fprintf(stderr, "baton: cannot read from Redis at %s\n", cfg->redis);
        json_decref(sel.ids);
        sel.ids = NULL;
    }
    bt_store_destroy(store);
    return sel.ids;
}

bool bt_cli_confirmed(bool yes, const char *verb, size_t n)
{
    char answer[16] = "";

    if (yes)
        return true;
    if (!isatty(STDIN_FILENO)) {
        fprintf(stderr, "baton: %zu instances match; pass --yes to %s them\n", n, verb);
        return false;
    }
    fprintf(stderr, "%s %zu instances? [y/N] ", verb, n);
    return fgets(answer, sizeof(answer), stdin) && (answer[0] == 'y' || answer[0] == 'Y');
}

/* Produces one event per selected instance, each to its queue's events topic. */
static int send_all(const struct bt_config *cfg, json_t *ids, struct bt_msg *msg,
                    const char *verb)
{
    struct bt_kafka_batch batch = {0};
    char errstr[512];
    size_t i, n = json_array_size(ids);
    json_t *pair;
    rd_kafka_t *rk = bt_kafka_producer_new(cfg, errstr, sizeof(errstr));
    int ret = BT_EXIT_OK;

    if (!rk) {
        fprintf(stderr, "baton: %s\n", errstr);
        return BT_EXIT_USAGE;
    }
    json_array_foreach(ids, i, pair)
    {
        char topic[512],
            *suffix = bt_events_suffix(json_string_value(json_array_get(pair, 1)));
        size_t len;
        char *bytes;
        msg->id = (char *)(uintptr_t)json_string_value(json_array_get(pair, 0));
        msg->ts = bt_clock_now_ms();
        bytes = bt_codec_encode(msg, &len);
        bt_kafka_topic(cfg, suffix, topic, sizeof(topic));
        if (!bytes ||
            bt_kafka_produce(rk, topic, msg->id, strlen(msg->id), bytes, len, &batch))
            ret = BT_EXIT_FAIL;
        free(bytes);
        free(suffix);
        if ((i + 1) % CHUNK == 0 || i + 1 == n)
            fprintf(stderr, "\r%s: %zu of %zu sent", verb, i + 1, n);
    }
    fprintf(stderr, "\n");
    if (bt_kafka_wait(rk, &batch, 30000) || batch.failed) {
        fprintf(stderr, "baton: %lld of %zu events not delivered to Kafka at %s\n",
                (long long)(batch.failed + batch.pending), n, cfg->brokers);
        ret = BT_EXIT_UNAVAILABLE;
    }
    rd_kafka_destroy(rk);
    if (!ret)
        fprintf(stderr, "%s: %zu instances\n", verb, n);
    return ret;
}

/* prepare(store, id, type) for each selected instance; the first exit
 * status not OK. */
static int prepare_all(const struct bt_config *cfg, json_t *ids,
                       bt_cli_batch_prepare prepare)
{
    struct bt_store *store = bt_cli_store(cfg);
    size_t i;
    json_t *row;
    int ret = store ? BT_EXIT_OK : BT_EXIT_UNAVAILABLE;

    json_array_foreach(ids, i, row)
    {
        if (ret)
            break;
        ret = prepare(store, json_string_value(json_array_get(row, 0)),
                      json_string_value(json_array_get(row, 2)));
    }
    bt_store_destroy(store);
    return ret;
}

int bt_cli_batch(const struct bt_config *cfg, const char *query, bool yes,
                 struct bt_msg *msg, const char *verb)
{
    return bt_cli_batch_of(cfg, query, yes, msg, verb, NULL, NULL);
}

int bt_cli_batch_of(const struct bt_config *cfg, const char *query, bool yes,
                    struct bt_msg *msg, const char *verb, const char *status,
                    bt_cli_batch_prepare prepare)
{
    struct bt_query q = {0};
    json_t *ids;
    int ret;

    if ((ret = bt_query_parse(&q, query))) {
        bt_query_release(&q);
        return ret;
    }
    /* a reset starts finished instances again; the rest acts on live ones */
    if (!(ids = select_instances(cfg, &q, msg->type == BT_MSG_RESET, status))) {
        bt_query_release(&q);
        return BT_EXIT_UNAVAILABLE;
    }
    if (!json_array_size(ids)) {
        const char *which = status ? status : msg->type == BT_MSG_RESET ? NULL : "live";
        fprintf(stderr, "%s: no %s%sinstance matches\n", verb, which ? which : "",
                which ? " " : "");
        ret = BT_EXIT_OK;
    } else if (!bt_cli_confirmed(yes, verb, json_array_size(ids))) {
        ret = BT_EXIT_USAGE;
    } else if (!prepare || !(ret = prepare_all(cfg, ids, prepare))) {
        ret = send_all(cfg, ids, msg, verb);
    }
    json_decref(ids);
    bt_query_release(&q);
    return ret;
}
