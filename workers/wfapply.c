/* The workflow role's events to their instances (wftask_int.h): decoding a
 * batch, resolving each event's instance (cached, assumed new, or loaded:
 * one pipelined round trip for the batch), applying the events in order and
 * replaying the touched instances. Events of another queue's instances are
 * forwarded (wfsend.c), refused ones dead-lettered. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "crashes.h"
#include "err.h"
#include "fatal.h"
#include "log.h"
#include "unsent.h"
#include "wftask_int.h"

void wf_decode_all(struct bt_wftask *wt)
{
    char errstr[512];

    for (size_t i = 0; i < wt->batch.n_items; i++) {
        struct wf_item *it = &wt->batch.items[i];
        int rc = bt_codec_decode(it->rkm ? it->rkm->payload : it->local->payload,
                                 it->rkm ? it->rkm->len : it->local->len,
                                 (size_t)wt->cfg->max_payload, &it->msg, errstr,
                                 sizeof(errstr));
        if (rc) {
            wf_dead_letter(wt, it, errstr);
            continue;
        }
        if (it->msg.type >= BT_MSG_TASK) {
            snprintf(errstr, sizeof(errstr),
                     "type: a %s message does not belong on the "
                     "events topic",
                     bt_msg_type_name(it->msg.type));
            wf_dead_letter(wt, it, errstr);
            bt_msg_release(&it->msg);
            continue;
        }
        it->decoded = true;
    }
}

static bool serves(const struct bt_wftask *wt, const char *queue)
{
    if (!queue)
        queue = "default";
    for (size_t i = 0; i < wt->n_queues; i++)
        if (!strcmp(wt->queues[i], queue))
            return true;
    return false;
}

/* Whether the start event of an instance not cached can skip the load: almost
 * every start is of a new instance, and commit.lua refuses a commit that
 * expects version 0 of an instance that exists (a conflict: the redo loads
 * it and finds the duplicate). Only a start that can succeed here: its type
 * known and its queue served (it is not forwarded on a guess). */
static bool assume_new(const struct bt_wftask *wt, const struct wf_item *it)
{
    /* a crash record of a start's code is only seen by a load */
    return it->msg.type == BT_MSG_START && !wt->crashes.until &&
           bt_registry_workflow(wt->reg, it->msg.workflow) && serves(wt, it->msg.queue);
}

/* Whether b asks an instance to unblock: `baton unblock` cleared its type's
 * record of crashes before it asked, so the record is read again. */
static bool asks_unblock(const struct wf_batch *b)
{
    for (size_t i = 0; i < b->n_items; i++) {
        const struct bt_msg *m = &b->items[i].msg;
        if (b->items[i].decoded && m->type == BT_MSG_SIGNAL && m->name &&
            !strcmp(m->name, BT_SIGNAL_UNBLOCK))
            return true;
    }
    return false;
}

/* Loads (one round trip) every instance of the pending items not cached, but
 * those of new instances' starts (first round only). */
int wf_resolve(struct bt_wftask *wt, bool only_conflicted)
{
    struct bt_instance **load = NULL;
    size_t n_load = 0;
    int ret = 0;

    if (wt->crashes.n_stopped && asks_unblock(&wt->batch))
        wt->crash_check = true;
    if (wt->crash_check) {
        if ((ret = bt_crashes_read(wt->store, &wt->crashes)))
            return ret;
        wt->crash_check = false;
    }
    /* one clock read per batch, and none once the careful time is over */
    if (wt->crashes.until && bt_clock_now_ms() >= wt->crashes.until)
        bt_crashes_seen_clear(&wt->crashes);
    load = malloc(wt->batch.n_items * sizeof(*load));
    BT_ASSERT(load);
    for (size_t i = 0; i < wt->batch.n_items; i++) {
        struct wf_item *it = &wt->batch.items[i];
        if (!it->decoded || it->forwarded || (only_conflicted && !it->conflicted))
            continue;
        it->assumed = false;
        it->inst = bt_idmap_get(wt->cache, it->msg.id);
        if (it->inst)
            continue;
        if (it->local) {
            /* not cached: its partition went to another worker meanwhile,
             * which applies it from Kafka */
            wf_forward_local(wt, it);
            continue;
        }
        it->inst = bt_instance_new(it->msg.id);
        BT_ASSERT(it->inst);
        bt_idmap_put(wt->cache, it->msg.id, it->inst);
        if (!only_conflicted && assume_new(wt, it)) {
            it->assumed = true;
            continue;
        }
        load[n_load++] = it->inst;
    }
    if (n_load) {
        size_t n_unsent = 0;
        ret = bt_store_load(wt->store, load, n_load);
        for (size_t i = 0; i < n_load; i++) {
            load[i]->delta.old_status = load[i]->status;
            if (load[i]->delta.n_cmds)
                bt_unseen_keep(&wt->unseen, load[i]);
            if (load[i]->delta.n_cmds && wt->flights)
                wf_drop_flying(wt, load[i]);
            if (load[i]->delta.n_cmds) /* unsent commands of a dead worker */
                load[n_unsent++] = load[i];
        }
        bt_unsent_drop_delivered(&wt->lookback, wt->cfg, wt->store, wt->worker, load,
                                 n_unsent);
        for (size_t i = 0; i < n_unsent; i++)
            if (load[i]->delta.n_cmds) /* send them */
                wf_batch_touch(&wt->batch, load[i]);
    }
    free(load);
    return ret;
}

/* The queue whose workers run the item's instance, when this worker does not
 * serve it: a start names it, other events find it in the instance. */
static const char *foreign_queue(const struct bt_wftask *wt, const struct wf_item *it)
{
    const char *queue;

    if (it->msg.type == BT_MSG_START && it->inst->status == BT_STATUS_NONE)
        queue = it->msg.queue;
    else if (it->inst->status != BT_STATUS_NONE)
        queue = it->inst->queue;
    else
        return NULL;
    return serves(wt, queue) ? NULL : queue ? queue : "default";
}

/* Where the events being applied were read, "<cluster>/<topic>/<partition>",
 * written again only when the partition changes (a batch holds few
 * partitions; snprintf per event cost 2 % of the worker). */
struct wf_pos {
    char text[512];
    const rd_kafka_topic_t *rkt;
    int32_t partition;
};

static const char *pos_of(struct wf_pos *p, const struct bt_wftask *wt,
                          const rd_kafka_message_t *rkm)
{
    if (rkm->rkt != p->rkt || rkm->partition != p->partition) {
        p->rkt = rkm->rkt;
        p->partition = rkm->partition;
        snprintf(p->text, sizeof(p->text), "%s/%s/%d", wt->cluster,
                 rd_kafka_topic_name(p->rkt), p->partition);
    }
    return p->text;
}

/* An eager task's outcome, from this worker: no Kafka position, its seq and
 * attempt tell a duplicate. */
static void apply_local(struct bt_wftask *wt, struct wf_item *it,
                        const struct bt_replay_env *env)
{
    const char *why;

    if (bt_replay_apply(it->inst, &it->msg, env, &why) == 0) {
        wt->stats.events++;
        wf_batch_touch(&wt->batch, it->inst);
    } else {
        wt->stats.duplicates++;
    }
}

/* An event from Kafka was applied: its instance holds its position from now
 * on, which tells a redelivery. */
static void applied(struct bt_wftask *wt, struct wf_item *it,
                    const struct bt_replay_env *env, const char *pos, int64_t ts)
{
    struct bt_instance *inst = it->inst;

    if (!inst->kpos || strcmp(inst->kpos, pos)) {
        free(inst->kpos);
        inst->kpos = strdup(pos);
        inst->kpos_stored = false;
    }
    inst->koff = it->rkm->offset;
    inst->kts = ts;
    inst->koff_stored = false;
    wt->stats.events++;
    wf_batch_touch(&wt->batch, inst);
    if (it->msg.type == BT_MSG_TIMER && it->msg.due > 0)
        bt_metrics_observe(
            bt_metrics_series(wt->m.timer_late, it->msg.kind),
            (double)(env->now_ms > it->msg.due ? env->now_ms - it->msg.due : 0) / 1000.0);
}

/* An event from Kafka that bt_replay_apply refused with rc (why says why): a
 * duplicate, a suspect judged again after a fresh load, or a dead letter. */
static void refused(struct bt_wftask *wt, struct wf_item *it, int rc, const char *why)
{
    char reason[600];

    if (rc == BT_EEXIST) {
        bt_log(BT_LOG_DEBUG, "ignored: %s workflow=%s type=%s seq=%lld attempt=%d", why,
               it->msg.id, bt_msg_type_name(it->msg.type), (long long)it->msg.seq,
               it->msg.attempt);
        wt->stats.duplicates++;
    } else if (rc == BT_EINVALMSG && !it->verified) {
        /* the cached copy may be behind Redis (another worker committed
         * the instance after this one loaded it: one paused past its
         * session that woke up): judged again against a fresh load */
        it->suspect = true;
    } else {
        snprintf(reason, sizeof(reason), "%s: %s \"%s\"", bt_msg_type_name(it->msg.type),
                 why, it->msg.type == BT_MSG_START ? it->msg.workflow : it->msg.id);
        wf_dead_letter(wt, it, reason);
    }
}

void wf_apply_all(struct bt_wftask *wt, const struct bt_replay_env *env,
                  bool only_conflicted)
{
    struct wf_pos p = {.partition = -1};

    for (size_t i = 0; i < wt->batch.n_items; i++) {
        struct wf_item *it = &wt->batch.items[i];
        const char *why, *pos;
        int64_t ts;
        int rc;

        if (!it->decoded || it->forwarded || (only_conflicted && !it->conflicted))
            continue;
        it->conflicted = false;
        if ((why = foreign_queue(wt, it))) {
            if (it->local)
                wf_forward_local(wt, it);
            else
                wf_forward(wt, it, why);
            continue;
        }
        if (it->local) {
            apply_local(wt, it, env);
            continue;
        }
        pos = pos_of(&p, wt, it->rkm);
        ts = rd_kafka_message_timestamp(it->rkm, NULL);
        /* a redelivery sits at or below the last applied offset and was
         * written no later than it: a new cluster (the embedded one restarted,
         * whose id may repeat) restarts offsets, but not the clock */
        if (it->inst->kpos && !strcmp(it->inst->kpos, pos) &&
            it->rkm->offset <= it->inst->koff && ts <= it->inst->kts) {
            wt->stats.duplicates++;
            continue;
        }
        rc = bt_replay_apply(it->inst, &it->msg, env, &why);
        if (rc == 0)
            applied(wt, it, env, pos, ts);
        else
            refused(wt, it, rc, why);
    }
}

void wf_replay_range(struct bt_wftask *wt, const struct bt_replay_env *env, size_t from,
                     size_t to)
{
    for (size_t i = from; i < to; i++) {
        struct bt_instance *inst = wt->batch.touched[i];
        bool may_run = bt_crashes_may_run(inst, env, &wt->crashes);
        int rc;
        inst->unblock_asked = false; /* this batch's */
        if (!may_run)
            continue;
        bt_fatal_enter(&(struct bt_fatal_site){"workflow", inst->id, inst->type, 0, 0});
        rc = bt_replay_run(inst, env);
        bt_fatal_leave();
        if (rc == BT_ENOENT)
            bt_log(BT_LOG_ERROR,
                   "workflow type not registered on this worker: %s workflow=%s",
                   inst->type, inst->id);
    }
}
