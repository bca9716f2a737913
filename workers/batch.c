/* The workflow role's batch (batch.h): adding its events, the touched
 * instances, and what each round of advance() keeps or forgets of them. */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "batch.h"

bool wf_batch_add(struct wf_batch *b, rd_kafka_message_t *rkm,
                  struct bt_local_event *local)
{
    memset(&b->items[b->n_items], 0, sizeof(b->items[0]));
    b->items[b->n_items].rkm = rkm;
    b->items[b->n_items++].local = local;
    return b->n_items == WF_BATCH_MAX;
}

void wf_batch_touch(struct wf_batch *b, struct bt_instance *inst)
{
    if (inst->mark == b->no)
        return;
    inst->mark = b->no;
    if (b->n_touched == b->cap_touched) {
        size_t cap = b->cap_touched ? b->cap_touched * 2 : 256;
        struct bt_instance **grown = realloc(b->touched, cap * sizeof(*grown));
        BT_ASSERT(grown);
        b->touched = grown;
        b->cap_touched = cap;
    }
    b->touched[b->n_touched++] = inst;
}

size_t wf_batch_reload_suspects(struct wf_batch *b, struct bt_idmap *cache)
{
    size_t n = 0;

    for (size_t i = 0; i < b->n_items; i++) {
        struct bt_instance *inst = b->items[i].inst;
        if (!b->items[i].suspect || !inst)
            continue;
        n++;
        for (size_t j = 0; j < b->n_items; j++) {
            struct wf_item *it = &b->items[j];
            if (it->inst != inst)
                continue;
            it->verified |= it->suspect;
            it->suspect = false;
            it->conflicted = true;
            it->assumed = false;
            it->inst = NULL;
        }
        for (size_t t = 0; t < b->n_touched;) {
            if (b->touched[t] == inst)
                b->touched[t] = b->touched[--b->n_touched];
            else
                t++;
        }
        bt_idmap_del(cache, inst->id);
        bt_instance_destroy(inst);
    }
    return n;
}

size_t wf_batch_drop_conflicts(struct wf_batch *b, struct bt_idmap *cache,
                               const int *results, bool *raced)
{
    size_t n = 0;

    *raced = false;
    for (size_t i = 0; i < b->n_touched; i++) {
        struct bt_instance *inst = b->touched[i];
        bool assumed = false;
        if (results[i] != BT_ECONFLICT)
            continue;
        n++;
        for (size_t j = 0; j < b->n_items; j++)
            if (b->items[j].inst == inst) {
                assumed |= b->items[j].assumed;
                b->items[j].conflicted = true;
                b->items[j].assumed = false;
                b->items[j].inst = NULL;
            }
        *raced |= !assumed;
        bt_idmap_del(cache, inst->id);
        bt_instance_destroy(inst);
        b->touched[i] = NULL;
    }
    /* keep the committed ones: their commands still have to be produced */
    size_t k = 0;
    for (size_t i = 0; i < b->n_touched; i++)
        if (b->touched[i])
            b->touched[k++] = b->touched[i];
    b->n_touched = k;
    return n;
}

void wf_batch_drop_touched(struct wf_batch *b, struct bt_idmap *cache)
{
    /* their memory may be ahead of Redis: reload them next time */
    for (size_t i = 0; i < b->n_touched; i++) {
        bt_idmap_del(cache, b->touched[i]->id);
        bt_instance_destroy(b->touched[i]);
    }
    b->n_touched = 0;
    for (size_t i = 0; i < b->n_items; i++)
        b->items[i].inst = NULL;
}

/* Instances that turned out not to exist, or to be another queue's, were
 * cached only to find that out. */
static void forget_unknown(struct wf_batch *b, struct bt_idmap *cache)
{
    for (size_t i = 0; i < b->n_items; i++) {
        struct bt_instance *inst = b->items[i].inst;
        if (!inst || (inst->status != BT_STATUS_NONE && !b->items[i].forwarded))
            continue;
        for (size_t j = i; j < b->n_items; j++)
            if (b->items[j].inst == inst)
                b->items[j].inst = NULL;
        if (bt_idmap_del(cache, inst->id) == inst)
            bt_instance_destroy(inst);
    }
}

void wf_batch_drop_done(struct wf_batch *b, struct bt_idmap *cache)
{
    for (size_t i = 0; i < b->n_touched; i++) {
        struct bt_instance *inst = b->touched[i];
        /* nor one whose code crashed workers: its count, which `baton
         * unblock` clears, is read again at its next event */
        if (bt_status_final(inst->status) || inst->crashes > 0) {
            bt_idmap_del(cache, inst->id);
            for (size_t j = 0; j < b->n_items; j++)
                if (b->items[j].inst == inst)
                    b->items[j].inst = NULL;
            bt_instance_destroy(inst);
        }
    }
    b->n_touched = 0;
    forget_unknown(b, cache);
}

rd_kafka_topic_partition_list_t *wf_batch_offsets(const struct wf_batch *b)
{
    rd_kafka_topic_partition_list_t *offsets = rd_kafka_topic_partition_list_new(8);

    for (size_t i = 0; i < b->n_items; i++) {
        const rd_kafka_message_t *rkm = b->items[i].rkm;
        if (!rkm)
            continue;
        rd_kafka_topic_partition_t *p = rd_kafka_topic_partition_list_find(
            offsets, rd_kafka_topic_name(rkm->rkt), rkm->partition);
        if (!p)
            p = rd_kafka_topic_partition_list_add(offsets, rd_kafka_topic_name(rkm->rkt),
                                                  rkm->partition);
        if (rkm->offset + 1 > p->offset)
            p->offset = rkm->offset + 1;
    }
    return offsets;
}

void wf_batch_release(struct wf_batch *b)
{
    for (size_t i = 0; i < b->n_items; i++) {
        if (b->items[i].decoded)
            bt_msg_release(&b->items[i].msg);
        if (b->items[i].rkm)
            rd_kafka_message_destroy(b->items[i].rkm);
        bt_local_event_free(b->items[i].local);
    }
    b->n_items = 0;
}

void wf_batch_free(struct wf_batch *b)
{
    free(b->touched);
}
