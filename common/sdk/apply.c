/* Applying events: bt_replay_apply() (replay.h) turns one event (a start, a
 * signal, a cancel, an activity's or a child's outcome, a timer) into a state
 * change of the instance and of one journal entry, deciding nothing: the
 * decisions are taken when the code runs again (replay.c). An event that no
 * step of the instance could have caused is refused with the reason. */
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "err.h"
#include "replay_int.h"

static struct bt_entry *entry_at(struct bt_instance *inst, int64_t seq, char kind)
{
    /* seqs of earlier runs (continue-as-new) are below base: stale */
    seq -= inst->base;
    if (seq < 0 || (uint64_t)seq >= inst->n_entries)
        return NULL;
    return inst->entries[seq].kind == kind ? &inst->entries[seq] : NULL;
}

char *bt_replay_queue_dup(const char *queue)
{
    return queue && strcmp(queue, "default") ? strdup(queue) : NULL;
}

static bool same_queue(const char *a, const char *b)
{
    return !strcmp(a && strcmp(a, "default") ? a : "",
                   b && strcmp(b, "default") ? b : "");
}

/* Whether a start may follow the instance's finished run with a new one: it
 * names that run (so that a redelivered start finds another run and is a
 * duplicate), on the instance's queue, and neither is a child (a child's
 * outcome goes to its parent, which starts it). */
static bool replaces(const struct bt_instance *inst, const struct bt_msg *msg,
                     const char **why)
{
    if (!msg->replaces_run || msg->replaces_run != inst->run ||
        !bt_status_final(inst->status)) {
        *why = msg->replaces_run ? "the run it replaces is not the finished current one"
                                 : "instance already started";
        return false;
    }
    if (inst->parent_id || msg->parent_id || !same_queue(inst->queue, msg->queue)) {
        *why = inst->parent_id || msg->parent_id ? "a child workflow's id is not reused"
                                                 : "instance lives on another queue";
        return false;
    }
    return true;
}

/* The finished run ends and the start's new run begins, as on continue-as-new
 * (its history archived as that run's, a journal whose seqs follow), with the
 * start's type and input and nothing of the old outcome. */
/* Ends the current run's journal: the records so far belong to it (its
 * history is kept under its own key), the next run's seqs follow its own. */
void bt_replay_end_run(struct bt_instance *inst)
{
    struct bt_delta *d = &inst->delta;

    d->reset = true;
    d->reset_history = d->n_history;
    inst->base += (int64_t)inst->n_entries;
    while (inst->n_entries)
        bt_entry_release(&inst->entries[--inst->n_entries]);
    inst->n_committed = 0;
    inst->run++;
    inst->hlen = 0;
}

static void reuse_run(struct bt_instance *inst)
{
    bt_replay_end_run(inst);
    inst->cancel_requested = false;
    bt_replay_set_json(&inst->result, NULL);
    bt_replay_set_json(&inst->error, NULL);
    bt_replay_set_json(&inst->signals, NULL);
}

static int apply_start(struct bt_instance *inst, const struct bt_msg *msg,
                       const struct bt_replay_env *env, const char **why)
{
    if (inst->status != BT_STATUS_NONE && !replaces(inst, msg, why))
        return BT_EEXIST;
    if (!bt_registry_workflow(env->reg, msg->workflow)) {
        *why = "unknown workflow type";
        return BT_ENOENT;
    }
    if (inst->status != BT_STATUS_NONE)
        reuse_run(inst);
    free(inst->type);
    inst->type = strdup(msg->workflow);
    bt_replay_set_json(&inst->input, json_incref(msg->body ? msg->body : json_null()));
    free(inst->queue);
    inst->queue = bt_replay_queue_dup(msg->queue);
    if (msg->parent_id) {
        free(inst->parent_id);
        inst->parent_id = strdup(msg->parent_id);
        inst->parent_seq = msg->seq;
        free(inst->parent_queue);
        inst->parent_queue = bt_replay_queue_dup(msg->parent_queue);
    }
    inst->status = BT_STATUS_RUNNING;
    inst->created = env->now_ms;
    inst->delta.meta_dirty = true;
    if (msg->timeout_ms > 0)
        bt_delta_timer(&inst->delta, true,
                       bt_timer_member("workflow_timeout", 0, 0, inst->id),
                       env->now_ms + msg->timeout_ms);
    if (msg->replaces_run)
        bt_replay_record(inst, env, "{s:s, s:s, s:s, s:O, s:i}", "ev", "started",
                         "workflow", msg->workflow, "queue",
                         msg->queue ? msg->queue : "default", "input", inst->input, "run",
                         inst->run);
    else
        bt_replay_record(inst, env, "{s:s, s:s, s:s, s:O, s:s*}", "ev", "started",
                         "workflow", msg->workflow, "queue",
                         msg->queue ? msg->queue : "default", "input", inst->input,
                         "parent", msg->parent_id);
    return 0;
}

static void buffer_signal(struct bt_instance *inst, const struct bt_msg *msg)
{
    if (!inst->signals)
        inst->signals = json_array();
    json_array_append_new(inst->signals, json_pack("[s, O]", msg->name,
                                                   msg->body ? msg->body : json_null()));
}

static int apply_signal(struct bt_instance *inst, const struct bt_msg *msg,
                        const struct bt_replay_env *env)
{
    struct bt_entry *waiting = NULL;

    if (!strcmp(msg->name, BT_SIGNAL_UNBLOCK)) {
        /* not for the workflow: only a reason to replay a blocked instance,
         * also one whose code crashed workers (`baton unblock` cleared
         * their count) */
        bt_replay_record(inst, env, "{s:s}", "ev", "unblock_requested");
        inst->unblock_asked = true;
        return 0;
    }
    for (size_t i = 0; i < inst->n_entries; i++) {
        struct bt_entry *e = &inst->entries[i];
        if (e->kind == BT_ENTRY_SIGNAL && e->state == BT_ST_WAITING &&
            !strcmp(e->name, msg->name)) {
            waiting = e;
            break;
        }
    }
    if (waiting) {
        waiting->state = BT_ST_DONE;
        bt_replay_set_json(&waiting->value,
                           json_incref(msg->body ? msg->body : json_null()));
        waiting->dirty = true;
        bt_replay_drop_timer(inst, "signal_timeout",
                             inst->base + (waiting - inst->entries), 0);
    } else {
        buffer_signal(inst, msg);
        inst->delta.meta_dirty = true;
    }
    bt_replay_record(inst, env, "{s:s, s:s, s:O, s:b, s:s*}", "ev", "signal_received",
                     "name", msg->name, "payload", msg->body ? msg->body : json_null(),
                     "buffered", !waiting, "by", msg->by);
    return 0;
}

static int apply_cancel(struct bt_instance *inst, const struct bt_msg *msg,
                        const struct bt_replay_env *env)
{
    bt_replay_record(inst, env, "{s:s, s:b, s:O, s:s*}", "ev", "cancel_requested",
                     "terminate", msg->terminate, "reason",
                     msg->body ? msg->body : json_null(), "by", msg->by);
    if (msg->terminate) {
        bt_replay_finish(inst, env, BT_STATUS_TERMINATED, NULL,
                         bt_replay_error("Terminated", "terminated by request"));
        return 0;
    }
    /* every step the code waits on now fails with Cancelled: replay then sees
     * the cancellation at the same point every time, and the code's own
     * failure handling runs its cleanup steps; running children first get
     * their parent-close policy */
    bt_replay_close_children(inst, env, "cancelled");
    for (size_t i = 0; i < inst->n_entries; i++) {
        struct bt_entry *e = &inst->entries[i];
        if (e->state == BT_ST_DONE || e->state == BT_ST_FAILED)
            continue;
        bt_replay_drop_entry_timer(inst, i);
        e->state = BT_ST_FAILED;
        e->dirty = true;
        bt_replay_set_json(&e->error,
                           bt_replay_error("Cancelled", "the instance was cancelled"));
    }
    inst->cancel_requested = true;
    inst->delta.meta_dirty = true;
    return 0;
}

static int apply_activity(struct bt_instance *inst, const struct bt_msg *msg,
                          const struct bt_replay_env *env, const char **why)
{
    struct bt_entry *e = entry_at(inst, msg->seq, BT_ENTRY_ACTIVITY);
    int64_t i = msg->seq - inst->base;

    /* what no task of this instance could have produced: refused, said */
    if (i >= 0 && ((uint64_t)i >= inst->n_entries || !e)) {
        *why = (uint64_t)i >= inst->n_entries
                   ? "no step with this seq was scheduled in"
                   : "the step with this seq is no activity in";
        return BT_EINVALMSG;
    }
    if (e && msg->attempt > e->attempt) {
        *why = "this attempt of the step was never started in";
        return BT_EINVALMSG;
    }
    if (e && msg->name && strcmp(msg->name, e->name)) {
        *why = "the outcome names another activity than the step's in";
        return BT_EINVALMSG;
    }
    if (!e || e->state != BT_ST_WAITING || e->attempt != msg->attempt) {
        *why = "stale activity outcome (step done or attempt superseded)";
        return BT_EEXIST;
    }
    bt_replay_drop_timer(inst, "timeout", msg->seq, msg->attempt);
    e->dirty = true;
    if (msg->type == BT_MSG_COMPLETED) {
        e->state = BT_ST_DONE;
        bt_replay_set_json(&e->value, json_incref(msg->body ? msg->body : json_null()));
        bt_replay_record(inst, env, "{s:s, s:I, s:i, s:s, s:O}", "ev",
                         "activity_completed", "seq", (json_int_t)msg->seq, "attempt",
                         msg->attempt, "name", e->name, "result", e->value);
        return 0;
    }
    e->state = BT_ST_ATTEMPT_FAILED;
    bt_replay_set_json(
        &e->error, json_pack("{s:s, s:s, s:b, s:I}", "type", msg->error.type, "message",
                             msg->error.message, "retryable", msg->error.retryable,
                             "retry_after_ms", (json_int_t)msg->error.retry_after_ms));
    bt_replay_record(inst, env, "{s:s, s:I, s:i, s:s, s:O}", "ev", "activity_failed",
                     "seq", (json_int_t)msg->seq, "attempt", msg->attempt, "name",
                     e->name, "error", e->error);
    return 0;
}

/* The timer fired at the due the workflow gave it: no worker took the task
 * (taking it moves the timer to start-to-close from then, and an eager task
 * has start-to-close alone). Retryable both: a task lost on the way is sent
 * again; add the type to non_retryable to fail the step instead. */
static json_t *timeout_error(const struct bt_entry *e, const struct bt_msg *msg,
                             const struct bt_replay_env *env)
{
    bool never_taken =
        env->schedule_to_start_ms > 0 && msg->due > 0 && msg->due == e->due;

    return json_pack("{s:s, s:s, s:b}", "type",
                     never_taken ? "ScheduleToStartTimeout" : "StartToCloseTimeout",
                     "message",
                     never_taken ? "no worker took the task within its schedule-to-start "
                                   "timeout"
                                 : "the attempt ran past its start-to-close timeout",
                     "retryable", 1);
}

static int apply_timer(struct bt_instance *inst, const struct bt_msg *msg,
                       const struct bt_replay_env *env, const char **why)
{
    struct bt_entry *e;
    const char *k = msg->kind;

    *why = "stale timer";
    if (!strcmp(k, "workflow_timeout")) {
        bt_replay_record(inst, env, "{s:s, s:s}", "ev", "timer_fired", "kind", k);
        bt_replay_finish(inst, env, BT_STATUS_FAILED, NULL,
                         bt_replay_error("WorkflowTimeout",
                                         "the workflow ran past its execution timeout"));
        return 0;
    }
    if (!strcmp(k, "sleep")) {
        if (!(e = entry_at(inst, msg->seq, BT_ENTRY_TIMER)) || e->state != BT_ST_WAITING)
            return BT_EEXIST;
        e->state = BT_ST_DONE;
    } else if (!strcmp(k, "signal_timeout")) {
        if (!(e = entry_at(inst, msg->seq, BT_ENTRY_SIGNAL)) || e->state != BT_ST_WAITING)
            return BT_EEXIST;
        e->state = BT_ST_DONE;
        bt_replay_set_json(&e->value, NULL);
    } else if (!strcmp(k, "timeout")) {
        if (!(e = entry_at(inst, msg->seq, BT_ENTRY_ACTIVITY)) ||
            e->state != BT_ST_WAITING || e->attempt != msg->attempt)
            return BT_EEXIST;
        e->state = BT_ST_ATTEMPT_FAILED;
        bt_replay_set_json(&e->error, timeout_error(e, msg, env));
    } else if (!strcmp(k, "retry")) {
        if (!(e = entry_at(inst, msg->seq, BT_ENTRY_ACTIVITY)) ||
            e->state != BT_ST_BACKOFF || e->attempt != msg->attempt)
            return BT_EEXIST;
        e->state = BT_ST_REDISPATCH;
    } else {
        *why = "unknown timer kind";
        return BT_EINVALMSG;
    }
    e->dirty = true;
    bt_replay_record(inst, env, "{s:s, s:s, s:I, s:i}", "ev", "timer_fired", "kind", k,
                     "seq", (json_int_t)msg->seq, "attempt", msg->attempt);
    return 0;
}

static int apply_child(struct bt_instance *inst, const struct bt_msg *msg,
                       const struct bt_replay_env *env, const char **why)
{
    struct bt_entry *e = entry_at(inst, msg->seq, BT_ENTRY_CHILD);
    bool ok = msg->type == BT_MSG_CHILD_COMPLETED;

    if (!e || e->state != BT_ST_WAITING) {
        *why = "stale child outcome";
        return BT_EEXIST;
    }
    e->dirty = true;
    if (ok) {
        e->state = BT_ST_DONE;
        bt_replay_set_json(&e->value, json_incref(msg->body ? msg->body : json_null()));
    } else {
        e->state = BT_ST_FAILED;
        bt_replay_set_json(&e->error,
                           bt_replay_error(msg->error.type, msg->error.message));
    }
    bt_replay_record(inst, env, "{s:s, s:I, s:s, s:O}", "ev",
                     ok ? "child_completed" : "child_failed", "seq", (json_int_t)msg->seq,
                     "child", msg->child, ok ? "result" : "error",
                     ok ? e->value : e->error);
    return 0;
}

/* A cancel sent by the parent's close policy (its reason names the parent). */
static bool from_parent(const struct bt_instance *inst, const struct bt_msg *msg)
{
    const char *parent = json_string_value(json_object_get(msg->body, "parent"));

    return parent && inst->parent_id && !strcmp(parent, inst->parent_id);
}

int bt_replay_apply(struct bt_instance *inst, const struct bt_msg *msg,
                    const struct bt_replay_env *env, const char **why)
{
    *why = "";
    if (msg->type == BT_MSG_START)
        return apply_start(inst, msg, env, why);
    if (inst->status == BT_STATUS_NONE) {
        *why = "unknown instance";
        return BT_ENOENT;
    }
    if (msg->type == BT_MSG_RESET) /* a finished run too: it is done again */
        return bt_control_apply(inst, msg, env, why);
    if (bt_status_final(inst->status)) {
        *why = "instance already finished";
        if (msg->type == BT_MSG_CANCEL && from_parent(inst, msg))
            return BT_EEXIST; /* the child finished first: nothing to cancel */
        return msg->type == BT_MSG_SIGNAL || msg->type == BT_MSG_CANCEL ||
                       msg->type == BT_MSG_PAUSE || msg->type == BT_MSG_RESUME
                   ? BT_ESTATE
                   : BT_EEXIST;
    }
    switch (msg->type) {
    case BT_MSG_SIGNAL:
        return apply_signal(inst, msg, env);
    case BT_MSG_CANCEL:
        return apply_cancel(inst, msg, env);
    case BT_MSG_COMPLETED:
    case BT_MSG_FAILED:
        return apply_activity(inst, msg, env, why);
    case BT_MSG_TIMER:
        return apply_timer(inst, msg, env, why);
    case BT_MSG_CHILD_COMPLETED:
    case BT_MSG_CHILD_FAILED:
        return apply_child(inst, msg, env, why);
    case BT_MSG_PAUSE:
    case BT_MSG_RESUME:
        return bt_control_apply(inst, msg, env, why);
    default:
        *why = "not an event";
        return BT_EINVALMSG;
    }
}
