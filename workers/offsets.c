/* Per-partition offsets in consume order, each with a done flag; see
 * offsets.h. A partition's window is an array used from `head`: the done
 * prefix moves head on, and the consumed front is reused before the array
 * grows, so it holds about as many offsets as are in progress. Each
 * partition's entry has its own generation, new whenever the partition is
 * tracked again after being forgotten. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "offsets.h"

struct part {
    char *topic;
    int32_t partition;
    uint64_t generation;
    int64_t *offsets;
    bool *done;
    size_t head, n, cap;
    int64_t commit_at; /* next offset to commit; -1: nothing new */
};

struct bt_offsets {
    struct part *parts;
    size_t n_parts;
    uint64_t generations; /* handed out so far */
};

struct bt_offsets *bt_offsets_new(void)
{
    return calloc(1, sizeof(struct bt_offsets));
}

void bt_offsets_destroy(struct bt_offsets *o)
{
    if (!o)
        return;
    bt_offsets_clear(o);
    free(o->parts);
    free(o);
}

static struct part *part_get(struct bt_offsets *o, const char *topic, int32_t partition,
                             bool create)
{
    struct part *p;

    for (size_t i = 0; i < o->n_parts; i++)
        if (o->parts[i].partition == partition && !strcmp(o->parts[i].topic, topic))
            return &o->parts[i];
    if (!create)
        return NULL;
    p = realloc(o->parts, (o->n_parts + 1) * sizeof(*p));
    BT_ASSERT(p);
    o->parts = p;
    p = &o->parts[o->n_parts++];
    memset(p, 0, sizeof(*p));
    p->topic = strdup(topic);
    BT_ASSERT(p->topic);
    p->partition = partition;
    p->generation = ++o->generations;
    p->commit_at = -1;
    return p;
}

uint64_t bt_offsets_track(struct bt_offsets *o, const char *topic, int32_t partition,
                          int64_t offset)
{
    struct part *p = part_get(o, topic, partition, true);

    if (p->head > 0 && p->head == p->n) {
        p->head = p->n = 0;
    } else if (p->n == p->cap) {
        if (p->head > p->cap / 2) { /* reuse the consumed front */
            memmove(p->offsets, p->offsets + p->head, (p->n - p->head) * sizeof(int64_t));
            memmove(p->done, p->done + p->head, (p->n - p->head) * sizeof(bool));
            p->n -= p->head;
            p->head = 0;
        } else {
            p->cap = p->cap ? p->cap * 2 : 64;
            p->offsets = realloc(p->offsets, p->cap * sizeof(int64_t));
            p->done = realloc(p->done, p->cap * sizeof(bool));
            BT_ASSERT(p->offsets && p->done);
        }
    }
    p->offsets[p->n] = offset;
    p->done[p->n++] = false;
    return p->generation;
}

void bt_offsets_done(struct bt_offsets *o, const char *topic, int32_t partition,
                     int64_t offset, uint64_t generation)
{
    struct part *p = part_get(o, topic, partition, false);

    if (!p || p->generation != generation) /* revoked since */
        return;
    for (size_t i = p->head; i < p->n; i++)
        if (p->offsets[i] == offset)
            p->done[i] = true;
    while (p->head < p->n && p->done[p->head])
        p->commit_at = p->offsets[p->head++] + 1;
}

rd_kafka_topic_partition_list_t *bt_offsets_take(struct bt_offsets *o)
{
    rd_kafka_topic_partition_list_t *offsets = NULL;

    for (size_t i = 0; i < o->n_parts; i++) {
        struct part *p = &o->parts[i];
        if (p->commit_at < 0)
            continue;
        if (!offsets)
            offsets = rd_kafka_topic_partition_list_new(4);
        rd_kafka_topic_partition_list_add(offsets, p->topic, p->partition)->offset =
            p->commit_at;
        p->commit_at = -1;
    }
    return offsets;
}

static void part_release(struct part *p)
{
    free(p->topic);
    free(p->offsets);
    free(p->done);
}

void bt_offsets_forget(struct bt_offsets *o, const rd_kafka_topic_partition_list_t *parts)
{
    size_t k = 0;

    for (size_t i = 0; i < o->n_parts; i++) {
        struct part *p = &o->parts[i];
        if (rd_kafka_topic_partition_list_find(parts, p->topic, p->partition))
            part_release(p);
        else
            o->parts[k++] = *p;
    }
    o->n_parts = k;
}

void bt_offsets_clear(struct bt_offsets *o)
{
    for (size_t i = 0; i < o->n_parts; i++)
        part_release(&o->parts[i]);
    o->n_parts = 0;
}
