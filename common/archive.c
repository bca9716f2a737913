/* Archive, then delete: the claims and the deletes are Lua scripts
 * (retention_claim.lua, retention_delete.lua), the archive messages are built
 * here from the run's history (history.h) and the instance's meta hash. A run's
 * history is split over several messages ("part" of "parts") only when it
 * does not fit in one under max-payload. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "archive.h"
#include "err.h"
#include "failpoint.h"
#include "history.h"
#include "instance.h"
#include "log.h"
#include "lookback.h"
#include "lua_scripts.h"

/* A failed delivery is tried again this much later; a message too big for
 * Kafka only after an operator could have raised its limits. */
#define RETRY_FAILED_MS 10000
#define RETRY_TOOBIG_MS 3600000
#define RETRY_OUTBOX_MS 5000
#define RECORD_OVERHEAD 1 /* the comma between two records */
/* History records read for one batch at most: a batch of runs near
 * --history-max (20,000 records each) would otherwise be read whole at once,
 * hundreds of MB of replies in the scheduler and in Redis's output buffer.
 * The runs over it are put back, due now, for the next claim; the first
 * ready run is always read. */
#define BATCH_RECORDS 50000

void bt_archive_set_names(const struct bt_store *store, int shard, char *set,
                          char *leased, size_t n)
{
    char buf[BT_STORE_KP_SIZE];
    const char *kp = bt_store_shard_kp(store, shard, buf, sizeof(buf));

    snprintf(set, n, "%s:retention", kp);
    snprintf(leased, n, "%s:retention:leased", kp);
}

/* Fills ar from a claim's member and token; 0 or BT_ENOMEM. */
static int claimed(struct bt_archive_run *ar, const char *member, long long token,
                   long long previous)
{
    const char *bar = strchr(member, '|');

    memset(ar, 0, sizeof(*ar));
    if (!(ar->member = strdup(member)))
        return BT_ENOMEM;
    ar->run = bar ? atoi(member) : 0;
    ar->id = bar ? ar->member + (bar - member) + 1 : ar->member;
    ar->token = token;
    ar->previous = previous;
    ar->action = BT_ARCHIVE_RETRY;
    return 0;
}

int64_t bt_archive_lease_ms(const struct bt_config *cfg)
{
    static const char name[] = "message.timeout.ms=";
    int64_t lease = BT_ARCHIVE_LEASE_MS;

    for (size_t i = 0; i < cfg->n_kafka; i++)
        if (!strncmp(cfg->kafka[i], name, sizeof(name) - 1) &&
            2 * atoll(cfg->kafka[i] + sizeof(name) - 1) > lease)
            lease = 2 * atoll(cfg->kafka[i] + sizeof(name) - 1);
    return lease;
}

int bt_archive_claim(struct bt_store *store, int shard, int64_t now_ms, int64_t lease_ms,
                     size_t limit, const char *const *members, size_t n_members,
                     struct bt_archive_run **runs, size_t *n)
{
    char set[300], leased[300], now[32], lease[32], lim[32];
    const char **argv = calloc(5 + n_members, sizeof(*argv));
    redisReply *reply = NULL;
    int ret = BT_EAGAIN;

    *runs = NULL;
    *n = 0;
    if (!argv)
        return BT_ENOMEM;
    bt_archive_set_names(store, shard, set, leased, sizeof(set));
    snprintf(now, sizeof(now), "%lld", (long long)now_ms);
    snprintf(lease, sizeof(lease), "%lld", (long long)lease_ms);
    snprintf(lim, sizeof(lim), "%zu", limit);
    argv[0] = set;
    argv[1] = leased;
    argv[2] = now;
    argv[3] = lease;
    argv[4] = lim;
    for (size_t i = 0; i < n_members; i++)
        argv[5 + i] = members[i];
    reply = bt_redis_eval(bt_store_redis(store), bt_lua_retention_claim, 2,
                          (int)(5 + n_members), argv, NULL);
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        if (reply && reply->type == REDIS_REPLY_ERROR)
            bt_log(BT_LOG_WARN, "retention claim refused by redis: %s", reply->str);
        goto out;
    }
    if (reply->elements && !(*runs = calloc(reply->elements / 3, sizeof(**runs)))) {
        ret = BT_ENOMEM;
        goto out;
    }
    /* the runs are claimed now: each one is returned, even if memory runs out
     * (its lease then expires and it is claimed again) */
    ret = 0;
    for (size_t i = 0; i + 2 < reply->elements; i += 3)
        if (claimed(&(*runs)[*n], reply->element[i]->str, reply->element[i + 1]->integer,
                    reply->element[i + 2]->integer) == 0)
            (*n)++;
out:
    freeReplyObject(reply);
    free(argv);
    return ret;
}

/* ---- reading a run ---- */

static const char *field(const redisReply *hash, const char *name)
{
    for (size_t i = 0; i + 1 < hash->elements; i += 2)
        if (!strcmp(hash->element[i]->str, name))
            return hash->element[i + 1]->str;
    return NULL;
}

/* Appends a record's text to records: parsed, or kept as its text when it
 * is not JSON. */
static void add_record(json_t *records, const char *text, size_t len)
{
    json_t *rec = json_loadb(text, len, 0, NULL);

    json_array_append_new(records, rec ? rec : json_stringn(text, len));
}

/* The records of a run, in order: those of its old stream (an XRANGE reply:
 * [[id, [e, record, ...]], ...]) and then its list's (packed, LRANGE), as a
 * new array; *entries the stream entries and list elements. NULL when a
 * reply is not what it should be. */
static json_t *records_of(const redisReply *stream, const redisReply *list,
                          int64_t *entries)
{
    json_t *records;

    if (!stream || stream->type != REDIS_REPLY_ARRAY || !list ||
        list->type != REDIS_REPLY_ARRAY || !(records = json_array()))
        return NULL;
    *entries = (int64_t)(stream->elements + list->elements);
    for (size_t i = 0; i < stream->elements; i++) {
        const redisReply *fields = stream->element[i]->element[1];
        for (size_t f = 1; f < fields->elements; f += 2)
            add_record(records, fields->element[f]->str, fields->element[f]->len);
    }
    for (size_t i = 0; i < list->elements; i++) {
        char *text = bt_history_unpack(list->element[i]->str, list->element[i]->len);
        if (text)
            add_record(records, text, strlen(text));
        else /* kept as it is: the archive holds what Redis held */
            add_record(records, list->element[i]->str, list->element[i]->len);
        free(text);
    }
    return records;
}

/* Adds the JSON text of meta field name to root as key, when there is one. */
static void set_json_field(json_t *root, const char *key, const redisReply *meta,
                           const char *name)
{
    const char *text = field(meta, name);
    json_t *v = text && *text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;

    if (v)
        json_object_set_new(root, key, v);
}

/* The workflow type of a run whose instance is gone: its "started" record. */
static const char *type_in(const json_t *records)
{
    const json_t *first = json_array_get(records, 0);
    const char *type = json_string_value(json_object_get(first, "workflow"));

    return type ? type : "(unknown)";
}

/* The fields of every part of ar's archive message but its history. */
static json_t *header(const struct bt_archive_run *ar, const redisReply *meta,
                      const json_t *records)
{
    const char *type = meta ? field(meta, "type") : NULL;
    const json_t *last = json_array_get(records, json_array_size(records) - 1);
    json_int_t finished = json_integer_value(json_object_get(last, "ts"));
    json_t *root;

    root = json_pack("{s:i, s:s, s:s, s:s, s:i, s:s}", "v", 1, "type", "archive", "id",
                     ar->id, "workflow", type ? type : type_in(records), "run", ar->run,
                     "status", ar->last ? field(meta, "status") : "continued");
    if (!root)
        return NULL;
    if (ar->last) {
        set_json_field(root, "result", meta, "result");
        set_json_field(root, "error", meta, "error");
    }
    if (ar->last && field(meta, "parent"))
        json_object_set_new(
            root, "parent",
            json_pack(
                "{s:s, s:I}", "id", field(meta, "parent"), "seq",
                (json_int_t)atoll(field(meta, "pseq") ? field(meta, "pseq") : "0")));
    if (ar->last && field(meta, "created"))
        json_object_set_new(root, "created", json_integer(atoll(field(meta, "created"))));
    if (!finished && ar->last && field(meta, "updated"))
        finished = atoll(field(meta, "updated"));
    json_object_set_new(root, "finished", json_integer(finished));
    return root;
}

/* ---- producing its parts ---- */

/* Encoded length of v. */
static size_t encoded_len(const json_t *v)
{
    return json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* The text of part `part` of `parts`: head with records[from, to). A new
 * string (free), or NULL. */
static char *encode_part(const json_t *head, const json_t *records, size_t from,
                         size_t to, int part, int parts)
{
    json_t *root = json_deep_copy(head), *slice = json_array();
    char *text = NULL;

    for (size_t i = from; slice && i < to; i++)
        json_array_append(slice, json_array_get(records, i));
    if (root && slice) {
        json_object_set(root, "history", slice);
        if (parts > 1) {
            json_object_set_new(root, "part", json_integer(part));
            json_object_set_new(root, "parts", json_integer(parts));
        }
        text = json_dumps(root, JSON_COMPACT);
    }
    json_decref(slice);
    json_decref(root);
    return text;
}

/* Where records are cut into parts that fit max-payload with head: part p
 * (from 0) is records [cut[p], cut[p + 1]). A new array (free), *parts set;
 * NULL when out of memory. */
static size_t *cut_parts(const struct bt_config *cfg, const json_t *head,
                         const json_t *records, int *parts)
{
    size_t n = json_array_size(records), used = 0;
    /* the header is in every part, with room for "history", part and parts */
    size_t head_len = encoded_len(head) + 64;
    size_t budget = (size_t)cfg->max_payload > head_len
                        ? (size_t)cfg->max_payload - head_len
                        : 1; /* one record a part */
    size_t *cut = calloc(n + 2, sizeof(*cut));

    *parts = 0;
    if (!cut)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        size_t len = encoded_len(json_array_get(records, i)) + RECORD_OVERHEAD;
        if (i > 0 && used + len > budget) {
            cut[++*parts] = i;
            used = 0;
        }
        used += len;
    }
    cut[++*parts] = n;
    return cut;
}

/* Marks found[p] for each of texts[0..parts) already on the archive topic,
 * produced by the claim ar took over (between its start and its expiry). */
static void look_back(const struct bt_config *cfg, rd_kafka_t **reader,
                      const struct bt_archive_run *ar, char **texts, int parts,
                      bool *found)
{
    struct bt_sought *sought = calloc((size_t)parts, sizeof(*sought));
    char topic[300], errstr[256];

    if (!sought)
        return;
    if (!*reader && !(*reader = bt_lookback_reader_new(cfg, errstr, sizeof(errstr))))
        bt_log(BT_LOG_WARN, "cannot look for archives sent already: %s", errstr);
    for (int p = 0; p < parts; p++)
        sought[p] = (struct bt_sought){ar->id, texts[p], strlen(texts[p]),
                                       ar->previous - bt_archive_lease_ms(cfg), false};
    bt_kafka_topic(cfg, "archive", topic, sizeof(topic));
    if (*reader && bt_lookback(*reader, cfg, topic, sought, (size_t)parts))
        bt_log(BT_LOG_WARN,
               "cannot tell whether a run was archived; archiving it: "
               "workflow=%s run=%d",
               ar->id, ar->run);
    for (int p = 0; p < parts; p++)
        found[p] = sought[p].found;
    free(sought);
}

/* Produces the parts of ar's archive, in order (one partition: the id's),
 * but those a claim it took over delivered already. */
static int produce_all(const struct bt_config *cfg, rd_kafka_t *rk, rd_kafka_t **reader,
                       struct bt_archive_run *ar, json_t *head, const json_t *records)
{
    int parts = 0, ret = BT_ENOMEM;
    size_t *cut = cut_parts(cfg, head, records, &parts);
    char **texts = cut ? calloc((size_t)parts, sizeof(*texts)) : NULL;
    bool *found = cut ? calloc((size_t)parts, sizeof(*found)) : NULL;
    char topic[300];

    if (!texts || !found)
        goto out;
    for (int p = 0; p < parts; p++)
        if (!(texts[p] = encode_part(head, records, cut[p], cut[p + 1], p + 1, parts)))
            goto out;
    if (ar->previous)
        look_back(cfg, reader, ar, texts, parts, found);
    bt_kafka_topic(cfg, "archive", topic, sizeof(topic));
    ret = 0;
    for (int p = 0; p < parts && ret == 0; p++) {
        ar->found += found[p];
        if (!found[p])
            ret = bt_kafka_produce(rk, topic, ar->id, strlen(ar->id), texts[p],
                                   strlen(texts[p]), &ar->batch);
    }
    if (ar->found)
        bt_log(BT_LOG_INFO,
               "archive found sent, not sending it again: parts=%d of %d "
               "workflow=%s run=%d",
               ar->found, parts, ar->id, ar->run);
    ar->parts = ret == 0 ? parts : 0;
out:
    for (int p = 0; texts && p < parts; p++)
        free(texts[p]);
    free(texts);
    free(found);
    free(cut);
    return ret;
}

/* The tombstone kept once the instance is gone: "<ttl>|<json>". */
static char *tombstone(const struct bt_config *cfg, const json_t *head, int64_t now_ms)
{
    const char *type = json_string_value(json_object_get(head, "workflow"));
    int64_t ttl = bt_config_retention(cfg->retention_ms, cfg->retention_types,
                                      cfg->n_retention_types, type);
    json_t *root;
    char topic[300], *text, *out = NULL;

    if (ttl > BT_ARCHIVE_TOMBSTONE_MAX_MS)
        ttl = BT_ARCHIVE_TOMBSTONE_MAX_MS;
    if (ttl < BT_ARCHIVE_TOMBSTONE_MIN_MS)
        ttl = BT_ARCHIVE_TOMBSTONE_MIN_MS;
    bt_kafka_topic(cfg, "archive", topic, sizeof(topic));
    root = json_pack("{s:O, s:O, s:O, s:O, s:I, s:s}", "workflow",
                     json_object_get(head, "workflow"), "status",
                     json_object_get(head, "status"), "run", json_object_get(head, "run"),
                     "finished", json_object_get(head, "finished"), "deleted",
                     (json_int_t)now_ms, "archive", topic);
    if (root && (text = json_dumps(root, JSON_COMPACT))) {
        size_t len = strlen(text) + 32;
        if ((out = malloc(len)))
            snprintf(out, len, "%lld|%s", (long long)ttl, text);
        free(text);
    }
    json_decref(root);
    return out;
}

/* ---- reading a batch: two pipelined round trips ---- */

/* What is read of one run. */
struct loaded {
    redisReply *meta;    /* HGETALL of the instance */
    redisReply *outbox;  /* EXISTS of its outbox */
    redisReply *length;  /* LLEN of the run's list */
    redisReply *history; /* XRANGE of the run's old stream, when it is archived */
    redisReply *list;    /* LRANGE of its list, then */
};

/* Reads the replies owed to the commands appended: one per non-NULL slot of
 * what[0..n) in order. Returns 0 or BT_EAGAIN (then every reply is read,
 * NULL ones left where the connection broke). */
static int read_replies(struct bt_store *store, redisReply ***what, size_t n)
{
    int ret = 0;

    for (size_t i = 0; i < n; i++)
        if (what[i] && bt_redis_reply(bt_store_redis(store), what[i]))
            ret = BT_EAGAIN;
    return ret;
}

/* Appends argv as a command whose reply goes to *slot (in slots[*k]). */
static int append(struct bt_store *store, redisReply ***slots, size_t *k,
                  redisReply **slot, int argc, const char **argv)
{
    if (bt_redis_append_argv(bt_store_redis(store), argc, argv, NULL))
        return BT_ENOMEM;
    slots[(*k)++] = slot;
    return 0;
}

/* The meta hash and the outbox of each run's instance. */
static int read_meta(struct bt_store *store, struct bt_archive_run *runs, size_t n,
                     struct loaded *in, redisReply ***slots)
{
    char meta[600], outbox[600];
    size_t k = 0;
    int ret = 0;

    for (size_t i = 0; i < n && ret == 0; i++) {
        bt_store_key(store, runs[i].id, "", meta, sizeof(meta));
        bt_store_key(store, runs[i].id, ":outbox", outbox, sizeof(outbox));
        ret = append(store, slots, &k, &in[i].meta, 2, (const char *[]){"HGETALL", meta});
        ret = ret ? ret
                  : append(store, slots, &k, &in[i].outbox, 2,
                           (const char *[]){"EXISTS", outbox});
    }
    return read_replies(store, slots, k) ? BT_EAGAIN : ret;
}

/* Whether run ar may be archived now, by what was read: an earlier run, or
 * the last one of a finished instance (else DROP: never deleted) whose
 * outbox is empty (else its result is not on Kafka yet: RETRY soon). */
static bool ready(struct bt_archive_run *ar, const struct loaded *in, int64_t now_ms)
{
    const char *run, *status;

    if (!in->meta || in->meta->type != REDIS_REPLY_ARRAY || !in->outbox ||
        in->outbox->type != REDIS_REPLY_INTEGER)
        return false; /* Redis: RETRY now */
    run = field(in->meta, "run");
    if (!(ar->last = run && atoi(run) == ar->run))
        return true;
    status = field(in->meta, "status");
    if (!status || !bt_status_final(bt_status_parse(status))) {
        bt_log(BT_LOG_ERROR,
               "a run in the retention set has not finished: not deleting "
               "it workflow=%s run=%d status=%s",
               ar->id, ar->run, status ? status : "?");
        ar->action = BT_ARCHIVE_DROP;
        return false;
    }
    if (in->outbox->integer != 0)
        ar->retry_at = now_ms + RETRY_OUTBOX_MS;
    return in->outbox->integer == 0;
}

/* The length of each ready run's history list: what reading it costs. */
static int read_lengths(struct bt_store *store, struct bt_archive_run *runs, size_t n,
                        struct loaded *in, redisReply ***slots, int64_t now_ms)
{
    char list[600];
    size_t k = 0;
    int ret = 0;

    for (size_t i = 0; i < n && ret == 0; i++) {
        if (!ready(&runs[i], &in[i], now_ms))
            continue;
        bt_history_key(store, runs[i].id, runs[i].last ? 0 : runs[i].run, list,
                       sizeof(list));
        ret = append(store, slots, &k, &in[i].length, 2, (const char *[]){"LLEN", list});
    }
    return read_replies(store, slots, k) ? BT_EAGAIN : ret;
}

/* The history of each ready run, up to BATCH_RECORDS records in all (a
 * run's old stream, from before the list, is not counted: an older baton's,
 * bounded by its history limit). */
static int read_histories(struct bt_store *store, struct bt_archive_run *runs, size_t n,
                          struct loaded *in, redisReply ***slots)
{
    char key[600], list[600], suffix[64];
    long long records = 0;
    size_t k = 0;
    int ret = 0;

    for (size_t i = 0; i < n && ret == 0; i++) {
        if (!in[i].length || in[i].length->type != REDIS_REPLY_INTEGER)
            continue; /* not ready, or Redis: tried again */
        if (k > 0 && records + in[i].length->integer > BATCH_RECORDS)
            continue; /* the next claim's */
        records += in[i].length->integer;
        snprintf(suffix, sizeof(suffix), runs[i].last ? ":history" : ":history:%d",
                 runs[i].run);
        bt_store_key(store, runs[i].id, suffix, key, sizeof(key));
        bt_history_key(store, runs[i].id, runs[i].last ? 0 : runs[i].run, list,
                       sizeof(list));
        ret = append(store, slots, &k, &in[i].history, 4,
                     (const char *[]){"XRANGE", key, "-", "+"});
        ret = ret ? ret
                  : append(store, slots, &k, &in[i].list, 4,
                           (const char *[]){"LRANGE", list, "0", "-1"});
    }
    return read_replies(store, slots, k) ? BT_EAGAIN : ret;
}

/* ---- producing a batch ---- */

/* Produces run ar's archive from what was read; sets its action. */
static int produce_run(const struct bt_config *cfg, rd_kafka_t *rk, rd_kafka_t **reader,
                       struct bt_archive_run *ar, const struct loaded *in, int64_t now_ms)
{
    json_t *records = records_of(in->history, in->list, &ar->entries), *head = NULL;
    int ret = BT_ENOMEM;

    if (!records)
        return in->history && in->history->type == REDIS_REPLY_ARRAY && in->list &&
                       in->list->type == REDIS_REPLY_ARRAY
                   ? BT_ENOMEM
                   : BT_EAGAIN;
    if (!ar->last && ar->entries == 0) {
        /* an earlier run with nothing left (`baton delete` took it): the
         * claim only goes */
        ar->action = BT_ARCHIVE_DELETE;
        json_decref(records);
        return 0;
    }
    if (!(head = header(ar, in->meta->elements ? in->meta : NULL, records)) ||
        (ar->last && !(ar->tombstone = tombstone(cfg, head, now_ms))))
        goto out;
    ret = produce_all(cfg, rk, reader, ar, head, records);
    if (ret == 0) {
        ar->action = BT_ARCHIVE_DELETE;
    } else if (ret == BT_ETOOBIG) {
        bt_log(BT_LOG_ERROR,
               "cannot archive a run: a part is over Kafka's message.max.bytes; "
               "trying again in an hour workflow=%s run=%d",
               ar->id, ar->run);
        ar->retry_at = now_ms + RETRY_TOOBIG_MS;
    }
out:
    json_decref(head);
    json_decref(records);
    return ret;
}

int bt_archive_prepare(struct bt_store *store, const struct bt_config *cfg,
                       rd_kafka_t *rk, rd_kafka_t **reader, struct bt_archive_run *runs,
                       size_t n, int64_t now_ms)
{
    struct loaded *in = calloc(n ? n : 1, sizeof(*in));
    redisReply ***slots = calloc(2 * n + 1, sizeof(*slots)); /* two a run a trip */
    int ret = BT_ENOMEM, rc;

    for (size_t i = 0; i < n; i++) {
        runs[i].action = BT_ARCHIVE_RETRY;
        runs[i].retry_at = now_ms;
    }
    if (!in || !slots)
        goto out;
    if ((ret = read_meta(store, runs, n, in, slots)) == 0 &&
        (ret = read_lengths(store, runs, n, in, slots, now_ms)) == 0)
        ret = read_histories(store, runs, n, in, slots);
    for (size_t i = 0; i < n; i++)
        if (in[i].history &&
            (rc = produce_run(cfg, rk, reader, &runs[i], &in[i], now_ms)) &&
            (ret == 0 || rc == BT_EAGAIN))
            ret = rc;
out:
    for (size_t i = 0; in && i < n; i++) {
        freeReplyObject(in[i].meta);
        freeReplyObject(in[i].outbox);
        freeReplyObject(in[i].length);
        freeReplyObject(in[i].history);
        freeReplyObject(in[i].list);
    }
    free(in);
    free(slots);
    return ret;
}

/* ---- ending the claims ---- */

int bt_archive_settle(struct bt_store *store, struct bt_archive_run *runs, size_t n,
                      int64_t now_ms)
{
    char set[300], leased[300], now[32], kp[BT_STORE_KP_SIZE];
    int shard = n ? bt_store_shard_of(store, runs[0].id) : 0; /* one claim's */
    char(*nums)[3][32] = calloc(n ? n : 1, sizeof(*nums));
    const char **argv = calloc(4 + 6 * n, sizeof(*argv));
    const struct bt_archive_run *first = NULL; /* of those that failed */
    size_t failed = 0;
    redisReply *reply = NULL;
    int ret = BT_ENOMEM;

    if (!nums || !argv)
        goto out;
    bt_archive_set_names(store, shard, set, leased, sizeof(set));
    snprintf(now, sizeof(now), "%lld", (long long)now_ms);
    argv[0] = set;
    argv[1] = leased;
    argv[2] = bt_store_shard_kp(store, shard, kp, sizeof(kp));
    argv[3] = now;
    for (size_t i = 0; i < n; i++) {
        struct bt_archive_run *ar = &runs[i];
        const char **a = argv + 4 + 6 * i;
        BT_ASSERT(ar->batch.pending == 0);
        if (ar->action == BT_ARCHIVE_DELETE && ar->batch.failed) {
            if (!failed++)
                first = ar;
            ar->action = BT_ARCHIVE_RETRY;
            ar->retry_at = now_ms + RETRY_FAILED_MS;
        }
        snprintf(nums[i][0], sizeof(nums[i][0]), "%lld", (long long)ar->token);
        snprintf(nums[i][1], sizeof(nums[i][1]), "%lld", (long long)ar->retry_at);
        snprintf(nums[i][2], sizeof(nums[i][2]), "%lld", (long long)ar->entries);
        a[0] = ar->member;
        a[1] = nums[i][0];
        /* a dropped run is deleted from the leased set by the script's
         * refusal: it says so again (-1) */
        a[2] = ar->action == BT_ARCHIVE_RETRY ? "r" : "d";
        a[3] = nums[i][1];
        a[4] = nums[i][2];
        a[5] = ar->tombstone ? ar->tombstone : "";
    }
    if (failed)
        bt_log(BT_LOG_WARN,
               "cannot archive runs: %s; trying again in 10 s count=%zu workflow=%s "
               "run=%d",
               rd_kafka_err2str(first->batch.err), failed, first->id, first->run);
    if (bt_failpoint("retention-delete-refused")) /* a real refusal: no such script */
        reply = bt_redis_command(bt_store_redis(store), "EVALSHA %040d 0", 0);
    else
        reply = bt_redis_eval(bt_store_redis(store), bt_lua_retention_delete, 2,
                              (int)(4 + 6 * n), argv, NULL);
    ret = BT_EAGAIN;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != n) {
        if (reply && reply->type == REDIS_REPLY_ERROR)
            bt_log(BT_LOG_WARN, "retention delete refused by redis: %s", reply->str);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        runs[i].result = (int)reply->element[i]->integer;
    ret = 0;
out:
    freeReplyObject(reply);
    free(argv);
    free(nums);
    return ret;
}

void bt_archive_runs_free(struct bt_archive_run *runs, size_t n)
{
    for (size_t i = 0; runs && i < n; i++) {
        free(runs[i].member);
        free(runs[i].tombstone);
    }
    free(runs);
}

int64_t bt_archive_backlog(struct bt_store *store, int64_t now_ms)
{
    char set[300], leased[300];
    struct bt_redis *r = bt_store_redis(store);
    int64_t n = 0;

    for (int shard = 0; shard < bt_store_shards(store) && n >= 0; shard++) {
        redisReply *due, *held;

        bt_archive_set_names(store, shard, set, leased, sizeof(set));
        due = bt_redis_command(r, "ZCOUNT %s -inf %lld", set, (long long)now_ms);
        held = due ? bt_redis_command(r, "ZCARD %s", leased) : NULL;
        if (due && held && due->type == REDIS_REPLY_INTEGER &&
            held->type == REDIS_REPLY_INTEGER)
            n += due->integer + held->integer;
        else
            n = BT_EAGAIN;
        freeReplyObject(due);
        freeReplyObject(held);
    }
    return n;
}
