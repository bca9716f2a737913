/* What the workflow role puts on Kafka (wftask_int.h): the commands of a
 * committed batch, the eager tasks it hands to this worker's activity role
 * instead, dead letters, events forwarded to another queue's topic and, at
 * the stop, the inbox's outcomes. All but the hand-off report into the
 * batch's flight, which lands once they are delivered (flights.c). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "codec.h"
#include "err.h"
#include "log.h"
#include "unsent.h"
#include "wftask_int.h"

static int produce(struct bt_wftask *wt, const char *suffix, const char *key,
                   const char *payload, size_t len)
{
    char topic[512];

    bt_kafka_topic(wt->cfg, suffix, topic, sizeof(topic));
    return bt_kafka_produce(wt->producer, topic, key, strlen(key), payload, len,
                            &wt->batch.flight->cmds);
}

void wf_dead_letter(struct bt_wftask *wt, const struct wf_item *it, const char *reason)
{
    const rd_kafka_message_t *rkm = it->rkm;
    struct bt_msg dl;
    char topic[512];
    char *bytes = NULL;
    size_t len;

    if (!rkm) { /* made by this worker: a bug, not input */
        bt_log(BT_LOG_ERROR, "local event refused: %s workflow=%s", reason,
               it->local->id);
        return;
    }
    bt_log(BT_LOG_WARN, "dead letter: %s topic=%s partition=%d offset=%lld", reason,
           rd_kafka_topic_name(rkm->rkt), rkm->partition, (long long)rkm->offset);
    wt->stats.dead++;
    if (bt_codec_dead_letter(&dl, reason, rd_kafka_topic_name(rkm->rkt), rkm->partition,
                             rkm->offset, rkm->key, rkm->key_len, rkm->payload, rkm->len))
        return;
    dl.ts = bt_clock_now_ms();
    if ((bytes = bt_codec_encode_dead_letter(&dl, (size_t)wt->cfg->max_payload, &len))) {
        bt_kafka_topic(wt->cfg, "dlq", topic, sizeof(topic));
        bt_kafka_produce(wt->producer, topic, rkm->key, rkm->key ? rkm->key_len : 0,
                         bytes, len, &wt->batch.flight->dlq);
    }
    free(bytes);
    bt_msg_release(&dl);
}

void wf_forward_local(struct bt_wftask *wt, struct wf_item *it)
{
    char topic[512];

    bt_kafka_topic(wt->cfg, it->local->suffix, topic, sizeof(topic));
    if (bt_kafka_produce(wt->producer, topic, it->local->id, strlen(it->local->id),
                         it->local->payload, it->local->len, &wt->batch.flight->dlq) == 0)
        wt->stats.forwarded++;
    it->forwarded = true;
}

void wf_forward(struct bt_wftask *wt, struct wf_item *it, const char *queue)
{
    char *suffix = bt_events_suffix(queue);
    const rd_kafka_message_t *rkm = it->rkm;
    char topic[512];

    bt_kafka_topic(wt->cfg, suffix, topic, sizeof(topic));
    bt_log(BT_LOG_DEBUG, "forwarded: workflow=%s type=%s from=%s to=%s", it->msg.id,
           bt_msg_type_name(it->msg.type), rd_kafka_topic_name(rkm->rkt), topic);
    if (bt_kafka_produce(wt->producer, topic, rkm->key, rkm->key ? rkm->key_len : 0,
                         rkm->payload, rkm->len, &wt->batch.flight->dlq) == 0)
        wt->stats.forwarded++;
    free(suffix);
    it->forwarded = true;
}

/* Eager dispatch: marks the tasks this worker's activity role can start in
 * time (its queue served here, room: pace.h), before the commit, which then
 * leaves them out of the outbox. Their timers become start-to-close alone,
 * and stay: a crash retries them like any lost attempt. */
void wf_mark_eager(struct bt_wftask *wt, struct wf_eager_room *room, size_t from,
                   size_t to, int64_t now_ms)
{
    if (!wt->eager.submit)
        return;
    for (size_t i = from; i < to; i++) {
        struct bt_delta *d = &wt->batch.touched[i]->delta;
        for (size_t c = 0; c < d->n_cmds; c++) {
            struct bt_command *cmd = &d->cmds[c];
            const char *queue = cmd->topic + strlen("tasks.");
            size_t k;
            if (!cmd->eager_ok || cmd->local || strncmp(cmd->topic, "tasks.", 6))
                continue;
            for (k = 0; k < room->n_seen && strcmp(room->seen[k].queue, queue); k++)
                ;
            if (k == room->n_seen) {
                if (room->n_seen == sizeof(room->seen) / sizeof(room->seen[0]))
                    continue;
                room->seen[room->n_seen].queue = queue;
                room->seen[room->n_seen++].marked = 0;
            }
            if (wt->eager.fits(wt->eager.ctx, queue,
                               cmd->start_due > now_ms ? cmd->start_due - now_ms : 1,
                               room->seen[k].marked) &&
                !bt_command_hold(&cmd->field, wt->worker)) {
                room->seen[k].marked++;
                cmd->local = true;
                /* it starts now: no wait for a worker in its timer */
                if (cmd->start_timer)
                    d->timers_add[cmd->start_timer - 1].due = cmd->start_due;
            }
        }
    }
}

/* Hands the committed eager tasks of delta d to the activity role and drops
 * them from d. */
static void submit_eager(struct bt_wftask *wt, struct bt_delta *d)
{
    size_t k = 0;

    for (size_t c = 0; c < d->n_cmds; c++) {
        struct bt_command *cmd = &d->cmds[c];
        if (!cmd->local) {
            d->cmds[k++] = *cmd;
            continue;
        }
        wt->eager.submit(wt->eager.ctx, cmd->payload, cmd->len, wt);
        wt->stats.eager++;
        bt_command_release(cmd);
    }
    d->n_cmds = k;
}

/* Produces the commands of the touched instances and moves them out of their
 * deltas into the batch's flight, which forgets them once they landed. */
int wf_produce_commands(struct bt_wftask *wt)
{
    struct wf_flight *f = wt->batch.flight;

    for (size_t i = 0; i < wt->batch.n_touched; i++) {
        struct bt_delta *d = &wt->batch.touched[i]->delta;
        submit_eager(wt, d);
        if (!d->n_cmds)
            continue;
        for (size_t c = 0; c < d->n_cmds; c++)
            if (produce(wt, d->cmds[c].topic, d->cmds[c].key, d->cmds[c].payload,
                        d->cmds[c].len))
                return BT_EAGAIN;
        if (f->n_sent == f->cap_sent) {
            size_t cap = f->cap_sent ? f->cap_sent * 2 : 64;
            struct bt_delivered *grown = realloc(f->sent, cap * sizeof(*grown));
            BT_ASSERT(grown);
            f->sent = grown;
            f->cap_sent = cap;
        }
        f->sent[f->n_sent].id = strdup(wt->batch.touched[i]->id);
        BT_ASSERT(f->sent[f->n_sent].id);
        f->sent[f->n_sent].cmds = d->cmds;
        f->sent[f->n_sent++].n = d->n_cmds;
        d->cmds = NULL;
        d->n_cmds = d->cap_cmds = 0;
    }
    return 0;
}

/* At the stop: the outcomes of eager tasks not applied yet go to Kafka, for
 * whoever owns their instances next (unsent.h). */
void wf_hand_off_inbox(struct bt_wftask *wt)
{
    struct bt_handoff h[256] = {0};
    struct bt_msg msgs[256];
    size_t n = 0;
    char errstr[256];

    for (struct bt_local_event *ev; (ev = bt_inbox_pop(&wt->inbox));) {
        if (n < 256 &&
            !bt_codec_decode(ev->payload, ev->len, (size_t)wt->cfg->max_payload, &msgs[n],
                             errstr, sizeof(errstr))) {
            h[n] = (struct bt_handoff){strdup(ev->suffix), msgs[n].id,     NULL, ev->len,
                                       msgs[n].seq,        msgs[n].attempt};
            h[n].payload = strdup(ev->payload);
            BT_ASSERT(h[n].suffix && h[n].payload);
            n++;
        } /* else the sweep sends its task again once this worker is gone */
        bt_local_event_free(ev);
    }
    bt_unsent_hand_off(wt->producer, wt->cfg, wt->store, wt->worker, h, n);
    for (size_t i = 0; i < n; i++) {
        free((char *)(uintptr_t)h[i].suffix);
        free((void *)(uintptr_t)h[i].payload);
        bt_msg_release(&msgs[i]);
    }
}
