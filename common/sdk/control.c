/* Operators' controls of one instance: pause, resume and reset. They come as
 * events on the instance's partition like any other (`baton pause|resume|
 * reset`), so they are ordered with its other events and applied by the
 * worker that owns it, in the same commit as everything else.
 *
 * Paused: the code takes no step (bt_replay_run runs only running and
 * blocked instances) and the timers of its steps are out of the timers set.
 * Events still apply: an activity that was running records its outcome, a
 * signal completes its wait or is buffered, a cancel marks the waits failed;
 * the code sees all of it when it runs again. On resume each timer comes
 * back with the rest of its time. The workflow's execution timeout keeps
 * counting: it bounds the whole execution, pauses included.
 *
 * Reset: the current run ends (its history kept under its run, archived
 * with the rest, its last record naming the next run) and a new run starts
 * with the journal before the chosen step. Its seqs follow the old run's, so
 * late outcomes of the old run find nothing to apply to; the code replays
 * the kept steps from the journal and does the chosen one again. An
 * execution timeout that ended with the old run is not armed again. */
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "err.h"
#include "replay_int.h"

/* "by" and "reason" of the message, with the record's event name. */
static void record(struct bt_instance *inst, const struct bt_replay_env *env,
                   const char *ev, const struct bt_msg *msg)
{
    bt_replay_record(inst, env, "{s:s, s:O*, s:s*}", "ev", ev, "reason", msg->body, "by",
                     msg->by);
}

static void set_paused(struct bt_instance *inst, int64_t at)
{
    inst->paused_at = at;
    inst->status = at ? BT_STATUS_PAUSED : BT_STATUS_RUNNING;
    inst->delta.meta_dirty = true;
    inst->delta.pause_changed = true;
}

static int pause_instance(struct bt_instance *inst, const struct bt_msg *msg,
                          const struct bt_replay_env *env, const char **why)
{
    if (inst->status == BT_STATUS_PAUSED) {
        *why = "instance already paused";
        return BT_EEXIST;
    }
    for (size_t i = 0; i < inst->n_entries; i++)
        bt_replay_drop_entry_timer(inst, i);
    set_paused(inst, env->now_ms);
    record(inst, env, "paused", msg);
    return 0;
}

static int resume_instance(struct bt_instance *inst, const struct bt_msg *msg,
                           const struct bt_replay_env *env, const char **why)
{
    int64_t paused_ms = inst->paused_at > 0 && env->now_ms > inst->paused_at
                            ? env->now_ms - inst->paused_at
                            : 0;
    const char *kind;

    if (inst->status != BT_STATUS_PAUSED) {
        *why = "instance not paused";
        return BT_EEXIST;
    }
    for (size_t i = 0; i < inst->n_entries; i++) {
        struct bt_entry *e = &inst->entries[i];
        /* due 0: a wait without a timeout, which had no timer */
        if (!bt_replay_entry_timer(inst, i, &kind) || e->due <= 0)
            continue;
        e->due += paused_ms;
        e->dirty = true;
        bt_delta_timer(&inst->delta, true,
                       bt_timer_member(kind, inst->base + (int64_t)i,
                                       e->kind == BT_ENTRY_ACTIVITY ? e->attempt : 0,
                                       inst->id),
                       e->due);
    }
    set_paused(inst, 0);
    bt_replay_record(inst, env, "{s:s, s:I, s:O*, s:s*}", "ev", "resumed", "paused_ms",
                     (json_int_t)paused_ms, "reason", msg->body, "by", msg->by);
    return 0;
}

/* The seq a reset starts again from: msg's, or the last failed step's.
 * Every step before it must be done, or an activity (done again). */
static int reset_point(const struct bt_instance *inst, const struct bt_msg *msg,
                       size_t *keep, const char **why)
{
    int64_t i = msg->seq - inst->base;

    if (msg->last_failure) {
        for (i = (int64_t)inst->n_entries - 1; i >= 0; i--)
            if (inst->entries[i].state == BT_ST_FAILED)
                break;
        if (i < 0) {
            *why = "reset to the last failure: no step failed in the current run of";
            return BT_EINVALMSG;
        }
    } else if (msg->seq < 0) {
        *why = "reset names no step (seq or last_failure) for";
        return BT_EINVALMSG;
    } else if (i < 0 || (uint64_t)i > inst->n_entries) {
        *why = "reset: no step with this seq in the current run of";
        return BT_EINVALMSG;
    }
    for (int64_t k = 0; k < i; k++) {
        const struct bt_entry *e = &inst->entries[k];
        if (e->state != BT_ST_DONE && e->state != BT_ST_FAILED &&
            e->kind != BT_ENTRY_ACTIVITY) {
            *why = "reset: a wait before that step has not ended in";
            return BT_EINVALMSG;
        }
    }
    *keep = (size_t)i;
    return 0;
}

int bt_control_reset_seq(const struct bt_instance *inst, const struct bt_msg *msg,
                         int64_t *seq, const char **why)
{
    size_t keep;
    int rc = reset_point(inst, msg, &keep, why);

    if (!rc)
        *seq = inst->base + (int64_t)keep;
    return rc;
}

/* Copies the first n entries of from into inst's (new, empty) journal. An
 * activity that had not ended is done again: its next attempt. */
static int keep_entries(struct bt_instance *inst, const struct bt_entry *from, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        struct bt_entry *e = bt_instance_append(inst, from[k].kind, from[k].name);
        if (!e)
            return BT_ENOMEM;
        e->state = from[k].state;
        e->attempt = from[k].attempt;
        e->throttles = from[k].throttles;
        e->value = json_incref(from[k].value);
        e->error = json_incref(from[k].error);
        if (e->state != BT_ST_DONE && e->state != BT_ST_FAILED)
            e->state = BT_ST_REDISPATCH;
        e->dirty = true;
    }
    return 0;
}

static int reset_instance(struct bt_instance *inst, const struct bt_msg *msg,
                          const struct bt_replay_env *env, const char **why)
{
    struct bt_entry *old;
    json_t *from;
    size_t keep, n_old = inst->n_entries;
    int64_t seq, old_run = inst->run;
    int rc = reset_point(inst, msg, &keep, why);

    if (rc)
        return rc;
    seq = inst->base + (int64_t)keep;
    /* the old entries outlive bt_replay_end_run, which releases them */
    if (!(old = malloc((n_old ? n_old : 1) * sizeof(*old))))
        return BT_ENOMEM;
    memcpy(old, inst->entries, n_old * sizeof(*old));
    for (size_t k = 0; k < n_old; k++) {
        old[k].name = old[k].name ? strdup(old[k].name) : NULL;
        json_incref(old[k].value);
        json_incref(old[k].error);
    }
    bt_replay_close_children(inst, env, "reset");
    for (size_t i = 0; i < inst->n_entries; i++)
        bt_replay_drop_entry_timer(inst, i);
    bt_replay_record(inst, env, "{s:s, s:I, s:i, s:O*, s:s*}", "ev", "reset", "seq",
                     (json_int_t)seq, "next_run", inst->run + 1, "reason", msg->body,
                     "by", msg->by);
    bt_replay_end_run(inst);
    rc = keep_entries(inst, old, keep);
    for (size_t k = 0; k < n_old; k++)
        bt_entry_release(&old[k]);
    free(old);
    if (rc)
        return rc;
    if (inst->paused_at)
        set_paused(inst, 0);
    inst->status = BT_STATUS_RUNNING;
    inst->cancel_requested = false;
    json_decref(inst->result);
    json_decref(inst->error);
    inst->result = inst->error = NULL;
    inst->delta.meta_dirty = true;
    from = json_pack("{s:I, s:I}", "run", (json_int_t)old_run, "seq", (json_int_t)seq);
    bt_replay_record(inst, env, "{s:s, s:s, s:i, s:O, s:O}", "ev", "started", "workflow",
                     inst->type, "run", inst->run, "input", inst->input, "reset_from",
                     from);
    json_decref(from);
    return 0;
}

int bt_control_apply(struct bt_instance *inst, const struct bt_msg *msg,
                     const struct bt_replay_env *env, const char **why)
{
    switch (msg->type) {
    case BT_MSG_PAUSE:
        return pause_instance(inst, msg, env, why);
    case BT_MSG_RESUME:
        return resume_instance(inst, msg, env, why);
    case BT_MSG_RESET:
        return reset_instance(inst, msg, env, why);
    default:
        *why = "not a control";
        return BT_EINVALMSG;
    }
}
