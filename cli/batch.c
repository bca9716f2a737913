/* Batch operations: `baton cancel|terminate|signal|pause|resume|reset ...
 * --query Q [--yes]` sends the event to every instance the query matches
 * (live ones; finished ones too for a reset). A query is terms
 * joined by AND: status=S, type=T, started<TIME, started>TIME (TIME: RFC
 * 3339, or a date). The instances come from the status index (idx:<status>,
 * or idx:all), their type, status and start time from their meta hashes, 500
 * per pipelined round trip; the events go out through one producer, with a
 * progress line. Without --yes it asks on a terminal and refuses elsewhere,
 * saying how many would be touched. */
#define _XOPEN_SOURCE   700 /* strptime */
#define _DEFAULT_SOURCE     /* timegm */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "clock.h"
#include "codec.h"
#include "err.h"
#include "journal.h"
#include "kafka.h"

#define CHUNK 500

struct query {
    const char *status, *type;
    int64_t before, after; /* started, ms; 0: no bound */
    char text[1024];
};

/* RFC 3339 ("2026-12-01T10:00:00Z") or a date ("2026-12-01", its midnight
 * UTC), as ms since the epoch; -1 when it is neither. */
static int64_t parse_time(const char *s)
{
    struct tm tm = {0};
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);

    if (!end) {
        memset(&tm, 0, sizeof(tm));
        end = strptime(s, "%Y-%m-%d", &tm);
    }
    if (!end || (*end && strcmp(end, "Z")))
        return -1;
    return (int64_t)timegm(&tm) * 1000;
}

/* Parses q->text in place. Returns 0, or BT_EXIT_USAGE having said why. */
static int parse_query(struct query *q, const char *text)
{
    char *save = NULL, *term;

    snprintf(q->text, sizeof(q->text), "%s", text);
    for (term = strtok_r(q->text, " ", &save); term; term = strtok_r(NULL, " ", &save)) {
        char *op = strpbrk(term, "=<>");
        if (!strcasecmp(term, "AND"))
            continue;
        if (!op || op == term || !op[1])
            goto bad;
        if (*op == '=' && !strncmp(term, "status", 6) && op == term + 6 &&
            bt_status_parse(op + 1) >= 0)
            q->status = op + 1;
        else if (*op == '=' && !strncmp(term, "type", 4) && op == term + 4)
            q->type = op + 1;
        else if (*op != '=' && !strncmp(term, "started", 7) && op == term + 7 &&
                 parse_time(op + 1) >= 0)
            *(*op == '<' ? &q->before : &q->after) = parse_time(op + 1);
        else
            goto bad;
        *op = '\0';
    }
    return 0;
bad:
    fprintf(stderr,
            "baton: --query: cannot read \"%s\": terms are status=S, type=T, "
            "started<TIME, started>TIME (RFC 3339 or a date), joined by AND\n",
            term);
    return BT_EXIT_USAGE;
}

static bool matches(const struct query *q, const redisReply *m, bool finished_too)
{
    const char *type = m->element[0]->str, *status = m->element[1]->str;
    int64_t created = m->element[2]->str ? strtoll(m->element[2]->str, NULL, 10) : 0;

    return type && status && (!q->type || !strcmp(q->type, type)) &&
           (!q->status || !strcmp(q->status, status)) &&
           (finished_too || !bt_status_final(bt_status_parse(status))) &&
           (!q->before || created < q->before) && (!q->after || created > q->after);
}

/* Appends to *ids the ids of ids[from, to) (a ZRANGE reply) that match. */
static int filter(struct bt_store *store, const struct query *q, const redisReply *all,
                  size_t from, size_t to, bool finished_too, json_t *out)
{
    struct bt_redis *r = bt_store_redis(store);
    char key[600];

    for (size_t i = from; i < to; i++) {
        const char *argv[] = {
            "HMGET",   bt_store_key(store, all->element[i]->str, "", key, sizeof(key)),
            "type",    "status",
            "created", "queue"};
        if (bt_redis_append_argv(r, 6, argv, NULL))
            return BT_EXIT_UNAVAILABLE;
    }
    for (size_t i = from; i < to; i++) {
        redisReply *m = NULL;
        if (bt_redis_reply(r, &m) || !m || m->type != REDIS_REPLY_ARRAY ||
            m->elements != 4) {
            freeReplyObject(m);
            return BT_EXIT_UNAVAILABLE;
        }
        if (matches(q, m, finished_too))
            json_array_append_new(
                out, json_pack("[s, s]", all->element[i]->str,
                               m->element[3]->str ? m->element[3]->str : "default"));
        freeReplyObject(m);
    }
    return 0;
}

/* The [id, queue] pairs of the instances q matches, or NULL (said why). */
static json_t *select_instances(const struct bt_config *cfg, const struct query *q,
                                bool finished_too)
{
    struct bt_store *store = bt_cli_store(cfg);
    redisReply *all = NULL;
    json_t *out = json_array();
    int ret = BT_EXIT_UNAVAILABLE;

    if (!store)
        goto out;
    all = bt_redis_command(bt_store_redis(store), "ZRANGE %s:idx:%s 0 -1",
                           bt_store_prefix(store), q->status ? q->status : "all");
    if (!all || all->type != REDIS_REPLY_ARRAY)
        goto out;
    for (size_t i = 0; i < all->elements; i += CHUNK)
        if ((ret = filter(store, q, all, i,
                          i + CHUNK < all->elements ? i + CHUNK : all->elements,
                          finished_too, out)))
            goto out;
    ret = 0;
out:
    if (ret) {
        fprintf(stderr, "baton: cannot read from Redis at %s\n", cfg->redis);
        json_decref(out);
        out = NULL;
    }
    freeReplyObject(all);
    bt_store_destroy(store);
    return out;
}

/* --yes, or a person's "y" on a terminal. */
static bool confirmed(bool yes, const char *verb, size_t n)
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

int bt_cli_batch(const struct bt_config *cfg, const char *query, bool yes,
                 struct bt_msg *msg, const char *verb)
{
    struct query q = {0};
    json_t *ids;
    int ret;

    if ((ret = parse_query(&q, query)))
        return ret;
    /* a reset starts finished instances again; the rest acts on live ones */
    if (!(ids = select_instances(cfg, &q, msg->type == BT_MSG_RESET)))
        return BT_EXIT_UNAVAILABLE;
    if (!json_array_size(ids)) {
        fprintf(stderr, "%s: no %sinstance matches\n", verb,
                msg->type == BT_MSG_RESET ? "" : "live ");
        ret = BT_EXIT_OK;
    } else if (!confirmed(yes, verb, json_array_size(ids))) {
        ret = BT_EXIT_USAGE;
    } else {
        ret = send_all(cfg, ids, msg, verb);
    }
    json_decref(ids);
    return ret;
}
