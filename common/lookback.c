/* Looking back on a topic (lookback.h). Only on the rare path of an outbox
 * found unsent: a reader assigned to one partition at a time reads it in
 * chunks from its end backwards, until a chunk reaches messages older than
 * anything sought there. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "kafka.h"
#include "log.h"
#include "lookback.h"

/* Read this much before made_ms: a clock stepped back, producers whose
 * messages were appended out of their timestamps' order. */
#define MARGIN_MS 10000
#define CHUNK     4096
#define WAIT_MS   10000

typedef int32_t partitioner_fn(const rd_kafka_topic_t *rkt, const void *key,
                               size_t keylen, int32_t partition_cnt, void *rkt_opaque,
                               void *msg_opaque);

/* The partitioner cfg gives the producer (librdkafka's default unless a
 * kafka.partitioner property names another), or NULL when a key does not
 * decide the partition (random, or a name not known here). */
static partitioner_fn *partitioner(const struct bt_config *cfg)
{
    static const struct {
        const char *name;
        partitioner_fn *fn;
    } known[] = {
        {"consistent_random", rd_kafka_msg_partitioner_consistent_random},
        {"consistent", rd_kafka_msg_partitioner_consistent},
        {"murmur2", rd_kafka_msg_partitioner_murmur2},
        {"murmur2_random", rd_kafka_msg_partitioner_murmur2_random},
        {"fnv1a", rd_kafka_msg_partitioner_fnv1a},
        {"fnv1a_random", rd_kafka_msg_partitioner_fnv1a_random},
    };
    const char *name = "consistent_random";

    for (size_t i = 0; i < cfg->n_kafka; i++)
        if (!strncmp(cfg->kafka[i], "partitioner=", 12))
            name = cfg->kafka[i] + 12;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (!strcmp(known[i].name, name))
            return known[i].fn;
    return NULL;
}

rd_kafka_t *bt_lookback_reader_new(const struct bt_config *cfg, char *errstr,
                                   size_t errstr_size)
{
    struct bt_config own = *cfg;
    char **props = calloc(cfg->n_kafka + 1, sizeof(*props));
    char group[300], eof[] = "enable.partition.eof=true";
    rd_kafka_t *rk;

    if (!props) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    /* an end of partition ends a read early (the last offset may be gone) */
    if (cfg->n_kafka) /* memcpy from NULL, even of 0 bytes, is undefined */
        memcpy(props, cfg->kafka, cfg->n_kafka * sizeof(*props));
    props[cfg->n_kafka] = eof;
    own.kafka = props;
    own.n_kafka = cfg->n_kafka + 1;
    snprintf(group, sizeof(group), "%s.lookback", cfg->prefix);
    rk = bt_kafka_consumer_new(&own, group, NULL, NULL, errstr, errstr_size);
    free(props);
    return rk;
}

static bool same(const rd_kafka_message_t *rkm, const struct bt_sought *s)
{
    size_t kl = strlen(s->key);
    return rkm->key_len == kl && !memcmp(rkm->key, s->key, kl) && rkm->len == s->len &&
           !memcmp(rkm->payload, s->payload, s->len);
}

/* One partition's part of a look. */
struct look {
    rd_kafka_t *rk;
    const char *topic;
    int32_t partition;
    struct bt_sought *sought;
    const int32_t *where; /* the partition of each sought, -1: any */
    size_t n, left;
};

static bool here(const struct look *l, size_t i)
{
    return !l->sought[i].found && (l->where[i] < 0 || l->where[i] == l->partition);
}

/* Reads offsets [from, to) and marks what it finds; *oldest: the oldest
 * timestamp seen. 0, or BT_EAGAIN when the messages did not come in time. */
static int read_range(struct look *l, int64_t from, int64_t to, int64_t *oldest)
{
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    int64_t deadline = bt_clock_mono_ms() + WAIT_MS;
    int ret = BT_EAGAIN;

    rd_kafka_topic_partition_list_add(parts, l->topic, l->partition)->offset = from;
    if (rd_kafka_assign(l->rk, parts))
        goto out;
    while (bt_clock_mono_ms() < deadline) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(l->rk, 100);
        bool done = false;
        if (!rkm)
            continue;
        if (rkm->partition == l->partition && rkm->offset >= from) {
            if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                done = true;
            } else if (!rkm->err && rkm->offset < to) {
                int64_t ts = rd_kafka_message_timestamp(rkm, NULL);
                if (ts >= 0 && ts < *oldest)
                    *oldest = ts;
                for (size_t i = 0; i < l->n && l->left; i++)
                    if (here(l, i) && same(rkm, &l->sought[i])) {
                        l->sought[i].found = true;
                        l->left--;
                    }
                done = rkm->offset + 1 >= to;
            }
        }
        rd_kafka_message_destroy(rkm);
        if (done) {
            ret = 0;
            break;
        }
    }
    rd_kafka_assign(l->rk, NULL);
out:
    rd_kafka_topic_partition_list_destroy(parts);
    return ret;
}

static int look_partition(struct look *l)
{
    int64_t lo, hi, end, since = INT64_MAX;

    l->left = 0;
    for (size_t i = 0; i < l->n; i++)
        if (here(l, i)) {
            l->left++;
            if (l->sought[i].made_ms - MARGIN_MS < since)
                since = l->sought[i].made_ms - MARGIN_MS;
        }
    if (!l->left)
        return 0;
    if (rd_kafka_query_watermark_offsets(l->rk, l->topic, l->partition, &lo, &hi,
                                         WAIT_MS))
        return BT_EAGAIN;
    for (end = hi; l->left && end > lo && hi - end < BT_LOOKBACK_MAX;) {
        int64_t start = end - CHUNK > lo ? end - CHUNK : lo, oldest = INT64_MAX;
        if (read_range(l, start, end, &oldest))
            return BT_EAGAIN;
        if (oldest < since)
            return 0;
        end = start;
    }
    if (l->left && end > lo)
        bt_log(
            BT_LOG_WARN,
            "lookback gave up before the messages' time: topic=%s partition=%d read=%lld",
            l->topic, (int)l->partition, (long long)(hi - end));
    return 0;
}

int bt_lookback(rd_kafka_t *reader, const struct bt_config *cfg, const char *topic,
                struct bt_sought *sought, size_t n)
{
    partitioner_fn *fn = partitioner(cfg);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt;
    struct look l = {reader, topic, 0, sought, NULL, n, 0};
    int32_t *where = NULL, count;
    int ret = BT_EAGAIN;

    for (size_t i = 0; i < n; i++)
        sought[i].found = false;
    if (!n)
        return 0;
    if (!(rkt = rd_kafka_topic_new(reader, topic, NULL)))
        return BT_EAGAIN;
    if (rd_kafka_metadata(reader, 0, rkt, &md, WAIT_MS) || md->topic_cnt != 1 ||
        md->topics[0].err || (count = md->topics[0].partition_cnt) <= 0)
        goto out;
    if (!(where = malloc(n * sizeof(*where))))
        goto out;
    for (size_t i = 0; i < n; i++)
        where[i] =
            fn ? fn(rkt, sought[i].key, strlen(sought[i].key), count, NULL, NULL) : -1;
    l.where = where;
    ret = 0;
    for (int32_t p = 0; p < count && !ret; p++) {
        l.partition = p;
        ret = look_partition(&l);
    }
out:
    free(where);
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return ret;
}
