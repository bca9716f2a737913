/* `baton dlq list | show NAME | redrive [NAME...]`: the dead letters of
 * <prefix>.dlq (schemas/dead_letter.schema.json) as a working queue. A dead
 * letter is named by where it lies in that topic, "<partition>:<offset>".
 * A redrive produces the original message (its key and bytes) to the topic
 * it was read from, once the cause is fixed, and then adds its name to the
 * Redis set <kp>:dlq:redriven, so that a second redrive skips it. The topic
 * itself is never changed: Kafka keeps what it keeps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "cli.h"
#include "err.h"
#include "codec.h"
#include "kafka.h"

#define SCAN_TIMEOUT_MS 15000

static const char *reason_arg, *since_arg, *origin_arg;
static int64_t limit_arg = 1000;
static bool json_arg;

static const struct bt_arg dlq_args[] = {
    {"reason", 0, BT_ARG_STR, &reason_arg, "TEXT",
     .help = "only dead letters whose reason contains TEXT"},
    {"since", 0, BT_ARG_STR, &since_arg, "TIME",
     .help = "only those dead-lettered since TIME: RFC 3339, or a duration ago (2h)"},
    {"origin", 0, BT_ARG_STR, &origin_arg, "TOPIC",
     .help = "only those read from TOPIC (baton.events, baton.tasks.q, ...)"},
    {"limit", 0, BT_ARG_INT, &limit_arg, "N", "1000", 1, 100000000,
     .help = "list: at most N, oldest first"},
    {"json", 0, BT_ARG_BOOL, &json_arg,
     .help = "list, show: JSON (list: one object per line) instead of text"},
    {NULL},
};

static const struct bt_cmd dlq_cmd = {
    .name = "baton dlq",
    .synopsis = "list [--reason R] [--since T] [--origin TOPIC] [--limit N] [--json] | "
                "show NAME [--json] | redrive [NAME...] [--reason R] [--since T] "
                "[--origin TOPIC]",
    .about =
        "Dead letters (<prefix>.dlq) as a working queue. NAME is \"partition:offset\" "
        "in that topic. redrive\nproduces each original message again to the topic "
        "it was read from (the filters, or the NAMEs,\nchoose which) and remembers "
        "it in Redis, so a second redrive skips it.",
    .args = dlq_args,
    .settings = (const char *const[]){BT_CLI_KAFKA_SETTINGS, BT_CLI_REDIS_SETTINGS, NULL},
    .min_pos = 1,
    .max_pos = 64,
};

struct letter {
    char name[48]; /* "<partition>:<offset>" */
    int64_t ts;    /* when it was dead-lettered, ms */
    struct bt_msg msg;
};

/* What one command does with the dead letters the filters keep. */
struct scan {
    const struct bt_config *cfg;
    int64_t since; /* ms; 0: any time */
    char **names;  /* only these (redrive, show); NULL: any */
    int n_names;
    const json_t *redriven; /* name -> true: borrowed */
    /* 0: go on; -1: done, stop reading; else an exit status */
    int (*fn)(struct scan *s, const struct letter *l);
    long seen;             /* kept by the filters so far */
    long skipped, unwhole; /* redrive: already redriven, not whole */
    rd_kafka_t *producer;  /* redrive */
    struct bt_kafka_batch batch;
    json_t *sent; /* redrive: names produced, array */
    long limit;   /* list: at most this many */
    json_t *rows; /* collect: the letters as JSON, array */
    bool whole;   /* collect: with their messages */
};

static bool kept(const struct scan *s, const struct letter *l)
{
    const struct bt_msg *m = &l->msg;
    bool named = !s->names;

    for (int i = 0; i < s->n_names && !named; i++)
        named = !strcmp(s->names[i], l->name);
    return named && (!reason_arg || (m->reason && strstr(m->reason, reason_arg))) &&
           (!origin_arg || (m->origin_topic && !strcmp(m->origin_topic, origin_arg))) &&
           l->ts >= s->since;
}

/* One message of the DLQ: decoded and given to s->fn when the filters keep
 * it. Returns what fn returned (0 when it was not called). */
static int take(struct scan *s, const rd_kafka_message_t *rkm)
{
    struct letter l = {0};
    char errstr[256];
    int ret;

    snprintf(l.name, sizeof(l.name), "%d:%lld", (int)rkm->partition,
             (long long)rkm->offset);
    if (bt_codec_decode(rkm->payload, rkm->len, (size_t)bt_config_message_max(s->cfg),
                        &l.msg, errstr, sizeof(errstr)) ||
        l.msg.type != BT_MSG_DEAD_LETTER) {
        fprintf(stderr, "baton dlq: %s is not a dead letter\n", l.name);
        bt_msg_release(&l.msg);
        return 0;
    }
    l.ts = l.msg.ts ? l.msg.ts : rd_kafka_message_timestamp(rkm, NULL);
    ret = kept(s, &l) ? s->fn(s, &l) : 0;
    bt_msg_release(&l.msg);
    return ret;
}

/* The partitions of the DLQ with something in them, assigned from their
 * beginning; their ends as they are now into *ends (caller frees). Returns
 * how many, or BT_EAGAIN when Kafka does not answer. */
static int assign_all(rd_kafka_t *rk, const char *topic, int64_t **ends)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_partition_list_t *parts = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    int n = BT_EAGAIN;

    if (rd_kafka_metadata(rk, 0, rkt, &md, 5000) || md->topic_cnt != 1 ||
        md->topics[0].err)
        goto out;
    *ends = calloc((size_t)md->topics[0].partition_cnt + 1, sizeof(**ends));
    parts = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
    for (int p = 0; *ends && p < md->topics[0].partition_cnt; p++) {
        int64_t lo, hi;
        int32_t id = md->topics[0].partitions[p].id;
        if (id < 0 || id >= md->topics[0].partition_cnt ||
            rd_kafka_query_watermark_offsets(rk, topic, id, &lo, &hi, 5000))
            goto out;
        (*ends)[id] = hi;
        if (hi > lo)
            rd_kafka_topic_partition_list_add(parts, topic, id)->offset = lo;
    }
    if (*ends && !rd_kafka_assign(rk, parts))
        n = parts->cnt;
out:
    if (parts)
        rd_kafka_topic_partition_list_destroy(parts);
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return n;
}

/* Reads the DLQ from its beginning to its end as it is now, calling take()
 * on each message. Returns a BT_EXIT_* status. */
static int scan_dlq(struct scan *s)
{
    char errstr[512], topic[300], group[64];
    int64_t *ends = NULL, deadline = bt_clock_now_ms() + SCAN_TIMEOUT_MS;
    rd_kafka_t *rk;
    int left, ret = BT_EXIT_UNAVAILABLE;

    snprintf(group, sizeof(group), "baton-dlq-%d", (int)getpid());
    if (!(rk =
              bt_kafka_consumer_new(s->cfg, group, NULL, NULL, errstr, sizeof(errstr)))) {
        fprintf(stderr, "baton dlq: %s\n", errstr);
        return BT_EXIT_USAGE;
    }
    bt_kafka_topic(s->cfg, "dlq", topic, sizeof(topic));
    if ((left = assign_all(rk, topic, &ends)) < 0) {
        fprintf(stderr, "baton dlq: cannot read %s at %s\n", topic, s->cfg->brokers);
        goto out;
    }
    while (left > 0 && bt_clock_now_ms() < deadline) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 200);
        int rc = 0;
        if (!rkm)
            continue;
        if (!rkm->err && rkm->offset < ends[rkm->partition]) {
            rc = take(s, rkm);
            left -= rkm->offset + 1 >= ends[rkm->partition];
        }
        rd_kafka_message_destroy(rkm);
        if (rc) {
            ret = rc < 0 ? BT_EXIT_OK : rc;
            goto out;
        }
    }
    ret = left > 0 ? BT_EXIT_UNAVAILABLE : BT_EXIT_OK;
    if (left > 0)
        fprintf(stderr, "baton dlq: %s not read to its end within %d s\n", topic,
                SCAN_TIMEOUT_MS / 1000);
out:
    free(ends);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return ret;
}

static json_t *letter_json(const struct scan *s, const struct letter *l, bool whole)
{
    char when[40];
    const struct bt_msg *m = &l->msg;
    json_t *root = json_pack(
        "{s:s, s:s, s:s, s:{s:s, s:i, s:I}, s:s?, s:b, s:I}", "name", l->name, "time",
        bt_cli_time(l->ts, when, sizeof(when)), "reason", m->reason, "origin", "topic",
        m->origin_topic, "partition", (int)m->origin_partition, "offset",
        (json_int_t)m->origin_offset, "key", m->key_base64 ? NULL : m->key, "redriven",
        json_object_get(s->redriven, l->name) != NULL, "payload_size",
        (json_int_t)(m->payload_size ? m->payload_size
                                     : (int64_t)strlen(m->payload ? m->payload : "")));

    if (root && whole)
        json_object_update_new(
            root, json_pack("{s:s, s:s?, s:b}", "payload", m->payload ? m->payload : "",
                            "payload_encoding", m->payload_base64 ? "base64" : NULL,
                            "truncated", m->payload_size > 0));
    return root;
}

static int print_row(struct scan *s, const struct letter *l)
{
    char when[40];

    if (s->seen++ >= s->limit)
        return -1;
    if (json_arg) {
        bt_cli_print_json(letter_json(s, l, false));
        return 0;
    }
    if (s->seen == 1)
        printf("%-12s %-24s %-8s %-36s %s\n", "NAME", "TIME", "REDRIVEN", "ORIGIN",
               "REASON");
    printf("%-12s %-24s %-8s %s/%d/%lld  %.80s\n", l->name,
           bt_cli_time(l->ts, when, sizeof(when)),
           json_object_get(s->redriven, l->name) ? "yes" : "no", l->msg.origin_topic,
           (int)l->msg.origin_partition, (long long)l->msg.origin_offset, l->msg.reason);
    return 0;
}

static int print_whole(struct scan *s, const struct letter *l)
{
    json_t *root = letter_json(s, l, true);
    const char *k;
    json_t *v;

    s->seen++;
    if (json_arg) {
        bt_cli_print_json(root);
        return -1;
    }
    json_object_foreach(root, k, v)
    {
        char *text = json_is_string(v) ? NULL : json_dumps(v, JSON_ENCODE_ANY);
        printf("%-17s %s\n", k, text ? text : json_string_value(v));
        free(text);
    }
    json_decref(root);
    return -1;
}

static int collect(struct scan *s, const struct letter *l)
{
    if (s->seen++ >= s->limit)
        return -1;
    json_array_append_new(s->rows, letter_json(s, l, s->whole));
    return 0;
}

/* Produces the original message again, unless it was redriven already or
 * is not whole here (cut to fit the dead letter, or bytes that were not
 * text: kept as base64, not redriven by this command). */
static int redrive_one(struct scan *s, const struct letter *l)
{
    const struct bt_msg *m = &l->msg;

    if (json_object_get(s->redriven, l->name)) {
        s->skipped++;
        return 0;
    }
    if (m->payload_size || m->payload_base64 || m->key_base64 || !m->payload) {
        fprintf(stderr,
                "baton dlq: %s not redriven: its message is not whole here (%s)\n",
                l->name, m->payload_size ? "cut to fit the dead letter" : "binary");
        s->unwhole++;
        return 0;
    }
    if (bt_kafka_produce(s->producer, m->origin_topic, m->key,
                         m->key ? strlen(m->key) : 0, m->payload, strlen(m->payload),
                         &s->batch)) {
        fprintf(stderr, "baton dlq: cannot produce %s to %s\n", l->name, m->origin_topic);
        return BT_EXIT_UNAVAILABLE;
    }
    json_array_append_new(s->sent, json_string(l->name));
    fprintf(stderr, "redriving %s to %s (%.60s)\n", l->name, m->origin_topic, m->reason);
    return 0;
}

/* The names of the dead letters redriven already, as a new set (object). */
static json_t *load_redriven(struct bt_store *store, char *key, size_t n)
{
    redisReply *reply;
    json_t *set = json_object();

    snprintf(key, n, "%s:dlq:redriven", bt_store_prefix(store));
    reply = bt_redis_command(bt_store_redis(store), "SMEMBERS %s", key);
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(reply);
        json_decref(set);
        return NULL;
    }
    for (size_t i = 0; i < reply->elements; i++)
        json_object_set_new(set, reply->element[i]->str, json_true());
    freeReplyObject(reply);
    return set;
}

/* Waits for Kafka's ack of what redrive produced, then remembers it. */
static int redrive_end(struct scan *s, struct bt_store *store, const char *key)
{
    size_t i;
    json_t *name;

    if (json_array_size(s->sent) && bt_kafka_wait(s->producer, &s->batch, 10000)) {
        fprintf(stderr, "baton dlq: Kafka at %s did not take the redriven messages\n",
                s->cfg->brokers);
        return BT_EXIT_UNAVAILABLE;
    }
    json_array_foreach(s->sent, i, name)
    {
        redisReply *reply = bt_redis_command(bt_store_redis(store), "SADD %s %s", key,
                                             json_string_value(name));
        bool ok = reply && reply->type == REDIS_REPLY_INTEGER;
        freeReplyObject(reply);
        if (!ok) {
            fprintf(stderr, "baton dlq: redriven, but not recorded in Redis: a second "
                            "redrive would send them again\n");
            return BT_EXIT_UNAVAILABLE;
        }
    }
    fprintf(stderr, "redriven: %zu; skipped: %ld already redriven, %ld not whole\n",
            json_array_size(s->sent), s->skipped, s->unwhole);
    return BT_EXIT_OK;
}

/* The scan's filters from the flags and the NAMEs. Returns -1, or an exit
 * status having said what is wrong. */
static int filters(struct scan *s, const char *cmd, char **names, int n_names)
{
    int64_t ago;

    if (since_arg && !bt_args_duration(since_arg, &ago))
        s->since = bt_clock_now_ms() - ago;
    else if (since_arg && bt_cli_parse_time(since_arg, bt_clock_now_ms(), &s->since)) {
        fprintf(stderr, "baton dlq: --since: \"%s\" is not RFC 3339 or a duration\n",
                since_arg);
        return BT_EXIT_USAGE;
    }
    if ((!strcmp(cmd, "show") && n_names != 1) || (!strcmp(cmd, "list") && n_names) ||
        (strcmp(cmd, "show") && strcmp(cmd, "list") && strcmp(cmd, "redrive"))) {
        fprintf(stderr, "usage: %s %s\n", dlq_cmd.name, dlq_cmd.synopsis);
        return BT_EXIT_USAGE;
    }
    s->names = n_names ? names : NULL;
    s->n_names = n_names;
    s->limit = (long)limit_arg;
    s->fn = !strcmp(cmd, "list")   ? print_row
            : !strcmp(cmd, "show") ? print_whole
                                   : redrive_one;
    return -1;
}

/* Runs the scan s was set up for: loads what was redriven, reads the DLQ,
 * and for a redrive waits for Kafka and records it. A BT_EXIT_* status. */
static int run(struct scan *s)
{
    struct bt_store *store = NULL;
    char key[600], errstr[512];
    json_t *redriven = NULL;
    int ret = BT_EXIT_UNAVAILABLE;

    if (!(store = bt_cli_store(s->cfg)) ||
        !(redriven = load_redriven(store, key, sizeof(key))))
        goto out;
    s->redriven = redriven;
    if (s->fn == redrive_one) {
        s->sent = json_array();
        if (!(s->producer = bt_kafka_producer_new(s->cfg, errstr, sizeof(errstr)))) {
            fprintf(stderr, "baton dlq: %s\n", errstr);
            goto out;
        }
    }
    if ((ret = scan_dlq(s)) == BT_EXIT_OK && s->fn == redrive_one)
        ret = redrive_end(s, store, key);
out:
    if (s->producer)
        rd_kafka_destroy(s->producer);
    s->producer = NULL;
    json_decref(redriven);
    s->redriven = NULL;
    bt_store_destroy(store);
    return ret;
}

int bt_cli_dlq_read(const struct bt_config *cfg, char **names, int n_names, bool whole,
                    long limit, json_t *rows)
{
    struct scan s = {.cfg = cfg,
                     .names = n_names ? names : NULL,
                     .n_names = n_names,
                     .fn = collect,
                     .limit = limit,
                     .rows = rows,
                     .whole = whole};

    return run(&s);
}

int bt_cli_dlq_redrive(const struct bt_config *cfg, char **names, int n_names,
                       json_t **sent)
{
    struct scan s = {.cfg = cfg, .names = names, .n_names = n_names, .fn = redrive_one};
    int ret = run(&s);

    *sent = s.sent;
    return ret;
}

int bt_cli_dlq(struct bt_config *cfg, int argc, char **argv)
{
    struct scan s = {.cfg = cfg};
    char *pos[64];
    int n_pos, ret;

    if ((ret = bt_cli_args(&dlq_cmd, argc, argv, pos, &n_pos)) >= 0)
        return ret;
    if ((ret = filters(&s, pos[0], pos + 1, n_pos - 1)) >= 0)
        return ret;
    ret = run(&s);
    if (ret == BT_EXIT_OK && s.fn == print_whole && !s.seen) {
        fprintf(stderr, "baton dlq: no dead letter %s\n", pos[1]);
        ret = BT_EXIT_FAIL;
    }
    json_decref(s.sent);
    return ret;
}
