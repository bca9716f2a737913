/* Tasks a previous owner may have taken (redelivered.h). */
#include <stdlib.h>
#include <string.h>

#include "redelivered.h"

static struct bt_redelivered_part *find(struct bt_redelivered *r, const char *topic,
                                        int32_t partition)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->parts[i].partition == partition && !strcmp(r->parts[i].topic, topic))
            return &r->parts[i];
    return NULL;
}

bool bt_redelivered_maybe(struct bt_redelivered *r, rd_kafka_t *rk,
                          const rd_kafka_message_t *rkm)
{
    const char *topic = rd_kafka_topic_name(rkm->rkt);
    struct bt_redelivered_part *p = find(r, topic, rkm->partition);
    int64_t low, high;

    if (!p) {
        /* the end the fetch that brought rkm saw: cached, no round trip */
        if (rd_kafka_get_watermark_offsets(rk, topic, rkm->partition, &low, &high) ||
            high < 0)
            return true;
        if (r->n == r->cap) {
            size_t cap = r->cap ? 2 * r->cap : 16;
            struct bt_redelivered_part *parts = realloc(r->parts, cap * sizeof(*parts));
            if (!parts)
                return true;
            r->parts = parts;
            r->cap = cap;
        }
        if (!(r->parts[r->n].topic = strdup(topic)))
            return true;
        p = &r->parts[r->n++];
        p->partition = rkm->partition;
        p->below = high;
    }
    return rkm->offset < p->below;
}

void bt_redelivered_forget(struct bt_redelivered *r,
                           const rd_kafka_topic_partition_list_t *parts)
{
    for (int i = 0; i < parts->cnt; i++) {
        struct bt_redelivered_part *p =
            find(r, parts->elems[i].topic, parts->elems[i].partition);
        if (!p)
            continue;
        free(p->topic);
        *p = r->parts[--r->n];
    }
}

void bt_redelivered_release(struct bt_redelivered *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->parts[i].topic);
    free(r->parts);
    memset(r, 0, sizeof(*r));
}
