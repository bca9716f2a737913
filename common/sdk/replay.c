/* The replay engine and the workflow side of the SDK (baton.h).
 *
 * bt_replay_apply() (apply.c) turns an event into a state change of one
 * journal entry; bt_replay_run() (replay_run.c) re-runs the workflow function,
 * whose calls, here, walk the journal seq by seq: an entry that is there
 * answers at once, a missing one is appended and its command (task, timer,
 * child start) goes to the delta. All retry decisions are taken during the
 * replay, where the step's options are at hand. A kind or name that differs
 * from the journal is nondeterminism: the replay is rolled back and the
 * instance blocked, never half-applied. Side effects and patch markers, which
 * command nothing, are in replay_recorded.c. */
#define _GNU_SOURCE /* vasprintf */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "baton.h"
#include "err.h"
#include "jsonw.h"
#include "log.h"
#include "control.h"
#include "replay.h"
#include "replay_int.h"

/* Futures are the journal index they stand for, encoded in the pointer: no
 * allocation. */
#define FUTURE(i)     ((bt_future *)(uintptr_t)((i) + 1))
#define FUTURE_SEQ(f) ((size_t)((uintptr_t)(f)-1))
#define FUTURE_NONE   ((bt_future *)(uintptr_t)SIZE_MAX)

static const char *const kind_names[128] = {
    [BT_ENTRY_ACTIVITY] = "activity",
    [BT_ENTRY_CHILD] = "child workflow",
    [BT_ENTRY_TIMER] = "sleep",
    [BT_ENTRY_SIGNAL] = "signal wait",
    [BT_ENTRY_SIDE_EFFECT] = "side effect",
    [BT_ENTRY_PATCH] = "patch marker",
    [BT_ENTRY_ATTRIBUTES] = "search attributes",
};

/* ---- history ---- */

/* Records are written as text (jsonw.h), not built as a json_t and dumped:
 * a step writes two of them. fmt and its arguments: see bt_jw_pairs. */
static void history_v(struct bt_instance *inst, const struct bt_replay_env *env,
                      const char *fmt, va_list ap)
{
    struct bt_jw w = {0};

    bt_jw_lit(&w, "{");
    bt_jw_pairs(&w, true, fmt, ap);
    bt_jw_lit(&w, ",\"ts\":");
    bt_jw_int(&w, env->now_ms);
    if (env->worker) {
        bt_jw_lit(&w, ",\"worker\":");
        bt_jw_string(&w, env->worker, strlen(env->worker));
    }
    bt_jw_lit(&w, "}");
    bt_delta_history(&inst->delta, bt_jw_finish(&w, NULL));
}

static void history(struct bt_instance *inst, const struct bt_replay_env *env,
                    const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    history_v(inst, env, fmt, ap);
    va_end(ap);
}

void bt_replay_record(struct bt_instance *inst, const struct bt_replay_env *env,
                      const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    history_v(inst, env, fmt, ap);
    va_end(ap);
}

json_t *bt_replay_error(const char *type, const char *message)
{
    return json_pack("{s:s, s:s}", "type", type, "message", message);
}

/* ---- commands ---- */

void bt_replay_set_json(json_t **slot, json_t *value /* stolen */)
{
    json_decref(*slot);
    *slot = value;
}

void bt_replay_drop_timer(struct bt_instance *inst, const char *kind, int64_t seq,
                          int attempt)
{
    bt_delta_timer(&inst->delta, false, bt_timer_member(kind, seq, attempt, inst->id), 0);
}

static char *dupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *dupf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;

    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

/* The topic suffix of a queue's tasks, written as bt_timer_member writes its
 * members (dupf's printf cost more than the rest of its life on the per-step
 * path). */
static char *task_topic(const char *queue)
{
    struct bt_jw w = {0};

    bt_jw_lit(&w, "tasks.");
    bt_jw_put(&w, queue, strlen(queue));
    return bt_jw_finish(&w, NULL);
}

static void command(struct bt_instance *inst, char *field, char *topic, const char *key,
                    const struct bt_msg *msg)
{
    size_t len = 0;
    char *payload = bt_codec_encode(msg, &len);

    /* a message that breaks its schema (a queue name from the code that
     * names no topic): the decision fails the instance (replay_run.c) */
    if (!payload && !inst->delta.uncarried)
        inst->delta.uncarried = strdup(topic);
    bt_delta_command(&inst->delta, field, topic, strdup(key), payload, len);
}

/* Publishes the outcome: on the results topic, and to the parent, if any. */
void bt_replay_finish(struct bt_instance *inst, const struct bt_replay_env *env,
                      enum bt_status status, json_t *result, json_t *error)
{
    struct bt_msg msg = {
        .type = BT_MSG_RESULT, .id = inst->id, .workflow = inst->type, .ts = env->now_ms};
    const char *type = json_string_value(json_object_get(error, "type"));

    /* the code gave up on the cancellation's "Cancelled" (after its cleanup,
     * say): the instance is cancelled, not failed */
    if (status == BT_STATUS_FAILED && inst->cancel_requested && type &&
        !strcmp(type, "Cancelled"))
        status = BT_STATUS_CANCELLED;
    /* nothing is waited on any more: no timer of it is to fire */
    for (size_t i = 0; i < inst->n_entries; i++)
        bt_replay_drop_entry_timer(inst, i);
    bt_replay_drop_timer(inst, "workflow_timeout", 0, 0);
    bt_replay_close_children(inst, env, bt_status_name(status));
    inst->status = status;
    inst->delta.meta_dirty = true;
    bt_replay_set_json(&inst->result, result);
    bt_replay_set_json(&inst->error, error);
    msg.status = (char *)(uintptr_t)bt_status_name(status);
    msg.body = inst->result;
    if (error) {
        msg.error.type =
            (char *)(uintptr_t)json_string_value(json_object_get(error, "type"));
        msg.error.message =
            (char *)(uintptr_t)json_string_value(json_object_get(error, "message"));
    }
    command(inst, strdup("r"), strdup("results"), inst->id, &msg);
    if (inst->parent_id) {
        struct bt_msg ev = {.type = status == BT_STATUS_COMPLETED ? BT_MSG_CHILD_COMPLETED
                                                                  : BT_MSG_CHILD_FAILED,
                            .id = inst->parent_id,
                            .seq = inst->parent_seq,
                            .child = inst->id,
                            .body = inst->result,
                            .error = msg.error,
                            .ts = env->now_ms};
        command(inst, strdup("p"), bt_events_suffix(inst->parent_queue), inst->parent_id,
                &ev);
    }
    history(inst, env, "{s:s, s:s, s:O?, s:O?}", "ev", "finished", "status",
            bt_status_name(status), "result", inst->result, "error", inst->error);
}

static const char *const close_policies[] = {
    [BT_PARENT_CLOSE_CANCEL] = "cancel",
    [BT_PARENT_CLOSE_TERMINATE] = "terminate",
    [BT_PARENT_CLOSE_ABANDON] = "abandon",
};

/* The parent is done with its running children (it finished, was cancelled
 * or continued as new): each gets the policy it was started with. */
void bt_replay_close_children(struct bt_instance *inst, const struct bt_replay_env *env,
                              const char *why)
{
    for (size_t i = 0; i < inst->n_entries; i++) {
        const struct bt_entry *e = &inst->entries[i];
        const char *child, *queue, *policy;
        int64_t seq = inst->base + (int64_t)i;
        if (e->kind != BT_ENTRY_CHILD || e->state != BT_ST_WAITING)
            continue;
        child = json_string_value(json_object_get(e->value, "child"));
        queue = json_string_value(json_object_get(e->value, "queue"));
        policy = json_string_value(json_object_get(e->value, "on_close"));
        if (!child)
            continue;
        if (!policy)
            policy = "cancel";
        history(inst, env, "{s:s, s:I, s:s, s:s, s:s}", "ev", "child_closed", "seq",
                (json_int_t)seq, "child", child, "policy", policy, "because", why);
        if (!strcmp(policy, "abandon"))
            continue;
        json_t *reason = json_pack("{s:s, s:s}", "parent", inst->id, "because", why);
        struct bt_msg cancel = {.type = BT_MSG_CANCEL,
                                .id = (char *)(uintptr_t)child,
                                .terminate = !strcmp(policy, "terminate"),
                                .body = reason,
                                .ts = env->now_ms};
        command(inst, dupf("k|%lld", (long long)seq), bt_events_suffix(queue), child,
                &cancel);
        json_decref(reason);
    }
}

/* ---- the SDK, workflow side ---- */

static void save_undo(bt_wf *wf, size_t seq)
{
    struct bt_entry *e = &wf->inst->entries[seq];

    if (wf->n_undo == wf->cap_undo) {
        size_t cap = wf->cap_undo ? wf->cap_undo * 2 : 8;
        struct bt_replay_undo *grown = realloc(wf->undo, cap * sizeof(*grown));
        BT_ASSERT(grown);
        wf->undo = grown;
        wf->cap_undo = cap;
    }
    wf->undo[wf->n_undo++] = (struct bt_replay_undo){seq,        e->state,     e->dirty,
                                                     e->attempt, e->throttles, e->due};
}

static void nondeterminism(bt_wf *wf, size_t seq, char kind, const char *name)
{
    struct bt_instance *inst = wf->inst;
    const struct bt_entry *e = &inst->entries[seq];
    char text[1024];

    if (wf->nondet)
        return;
    wf->nondet = true;
    snprintf(
        text, sizeof(text),
        "nondeterminism at seq %lld: the journal has %s \"%s\" but the code asks for "
        "%s \"%s\"",
        (long long)(inst->base + (int64_t)seq), kind_names[(int)e->kind], e->name,
        kind_names[(int)kind], name);
    bt_replay_set_json(&inst->error, json_pack("{s:s, s:s, s:I, s:s, s:s}", "type",
                                               "Nondeterminism", "message", text, "seq",
                                               (json_int_t)(inst->base + (int64_t)seq),
                                               "journal", e->name, "code", name));
}

/* Consumes the next seq for a step of this kind and name. Returns the entry
 * (existing or new; *fresh tells) or NULL on nondeterminism. */
static struct bt_entry *take(bt_wf *wf, char kind, const char *name, bool *fresh)
{
    struct bt_instance *inst = wf->inst;
    size_t seq = wf->cursor++;
    struct bt_entry *e;

    *fresh = false;
    if (wf->nondet || wf->finished)
        return NULL;
    if (seq < inst->n_entries) {
        e = &inst->entries[seq];
        if (e->kind != kind || strcmp(e->name, name)) {
            nondeterminism(wf, seq, kind, name);
            return NULL;
        }
        save_undo(wf, seq);
        return e;
    }
    *fresh = true;
    e = bt_instance_append(inst, kind, name);
    BT_ASSERT(e);
    return e;
}

static size_t index_of(const bt_wf *wf, const struct bt_entry *e)
{
    return (size_t)(e - wf->inst->entries);
}

/* The step's seq: its index plus the seqs of the runs before this one. */
static size_t seq_of(const bt_wf *wf, const struct bt_entry *e)
{
    return (size_t)wf->inst->base + index_of(wf, e);
}

static void set_timer(bt_wf *wf, const char *kind, struct bt_entry *e, int attempt,
                      int64_t due)
{
    e->due = due;
    bt_delta_timer(&wf->inst->delta, true,
                   bt_timer_member(kind, (int64_t)seq_of(wf, e), attempt, wf->inst->id),
                   due);
}

struct resolved {
    const char *queue;
    const char *rate_key;
    const char *concurrency_key;
    struct bt_retry retry;
    int64_t timeout_ms;
};

static struct resolved resolve(const bt_wf *wf, const char *name,
                               const struct bt_step_opts *opts)
{
    const struct bt_activity_def *def = bt_registry_activity(wf->env->reg, name);
    const struct bt_step_opts *d = def ? &def->defaults : NULL;
    struct resolved r = {.queue = "default", .timeout_ms = wf->env->default_timeout_ms};

#define PICK(field, dst)                                                                 \
    do {                                                                                 \
        if (opts && opts->field)                                                         \
            (dst) = opts->field;                                                         \
        else if (d && d->field)                                                          \
            (dst) = d->field;                                                            \
    } while (0)
    PICK(queue, r.queue);
    PICK(rate_key, r.rate_key);
    PICK(concurrency_key, r.concurrency_key);
    PICK(start_to_close_ms, r.timeout_ms);
    PICK(retry.max_attempts, r.retry.max_attempts);
    PICK(retry.initial_ms, r.retry.initial_ms);
    PICK(retry.coefficient, r.retry.coefficient);
    PICK(retry.max_ms, r.retry.max_ms);
    PICK(retry.jitter, r.retry.jitter);
    PICK(retry.non_retryable, r.retry.non_retryable);
#undef PICK
    if (r.retry.max_attempts <= 0)
        r.retry.max_attempts = 3;
    if (r.retry.initial_ms <= 0)
        r.retry.initial_ms = 1000;
    if (r.retry.coefficient < 1.0)
        r.retry.coefficient = 2.0;
    if (r.retry.max_ms <= 0)
        r.retry.max_ms = 100 * r.retry.initial_ms;
    return r;
}

static void dispatch(bt_wf *wf, struct bt_entry *e, const json_t *input,
                     const struct resolved *r)
{
    struct bt_instance *inst = wf->inst;
    int64_t seq = (int64_t)seq_of(wf, e);
    struct bt_msg msg = {.type = BT_MSG_TASK,
                         .id = inst->id,
                         .seq = seq,
                         .attempt = e->attempt,
                         .name = e->name,
                         .queue = (char *)(uintptr_t)r->queue,
                         .rate_key = (char *)(uintptr_t)r->rate_key,
                         .wf_queue = inst->queue,
                         .concurrency_key = (char *)(uintptr_t)r->concurrency_key,
                         .deadline = wf->env->now_ms + r->timeout_ms,
                         .body = (json_t *)(uintptr_t)input,
                         .ts = wf->env->now_ms};

    e->state = BT_ST_WAITING;
    e->dirty = true;
    command(inst, bt_task_field(seq, e->attempt), task_topic(r->queue), inst->id, &msg);
    /* The timer allows the wait for a worker (in Kafka, for a token or a
     * slot) on top of start-to-close; a worker that takes the task restarts
     * it at start-to-close (take_task.lua), and an eager task, which starts
     * now, has start-to-close alone (wf_mark_eager). */
    set_timer(wf, "timeout", e, e->attempt, msg.deadline + wf->env->schedule_to_start_ms);
    if (inst->delta.n_cmds) {
        struct bt_command *cmd = &inst->delta.cmds[inst->delta.n_cmds - 1];
        cmd->eager_ok = !r->rate_key && !r->concurrency_key;
        cmd->start_timer = inst->delta.n_timers_add;
        cmd->start_due = msg.deadline;
    }
    history(inst, wf->env, "{s:s, s:I, s:i, s:s, s:s, s:O, s:I}", "ev",
            "activity_scheduled", "seq", (json_int_t)seq, "attempt", e->attempt, "name",
            e->name, "queue", r->queue, "input", input, "deadline",
            (json_int_t)msg.deadline);
}

static bool non_retryable(const struct bt_retry *retry, const char *type)
{
    for (const char *const *p = retry->non_retryable; p && *p; p++)
        if (!strcmp(*p, type))
            return true;
    return false;
}

/* An attempt failed: retry after a backoff, or fail the step for good. */
static void decide_retry(bt_wf *wf, struct bt_entry *e, const json_t *input,
                         const struct resolved *r)
{
    const char *type = json_string_value(json_object_get(e->error, "type"));
    int64_t after = json_integer_value(json_object_get(e->error, "retry_after_ms"));
    int counted = e->attempt - e->throttles;
    double backoff;

    e->dirty = true;
    if (after > 0) {
        /* throttled by the downstream: wait as told, do not count the attempt */
        e->throttles++;
    } else if (!json_is_true(json_object_get(e->error, "retryable")) ||
               non_retryable(&r->retry, type ? type : "") ||
               counted >= r->retry.max_attempts) {
        e->state = BT_ST_FAILED;
        history(wf->inst, wf->env, "{s:s, s:I, s:i, s:s, s:O}", "ev", "activity_gave_up",
                "seq", (json_int_t)seq_of(wf, e), "attempts", e->attempt, "name", e->name,
                "error", e->error);
        return;
    } else {
        backoff = (double)r->retry.initial_ms * pow(r->retry.coefficient, counted - 1);
        if (backoff > (double)r->retry.max_ms)
            backoff = (double)r->retry.max_ms;
        if (r->retry.jitter > 0)
            backoff *= 1.0 + r->retry.jitter * (2.0 * ((double)rand() / RAND_MAX) - 1.0);
        after = (int64_t)backoff;
    }
    if (after <= 0) {
        e->attempt++;
        dispatch(wf, e, input, r);
        return;
    }
    e->state = BT_ST_BACKOFF;
    set_timer(wf, "retry", e, e->attempt, wf->env->now_ms + after);
    /* counted: the attempts so far that count against max_attempts (a
     * throttle does not) */
    history(wf->inst, wf->env, "{s:s, s:I, s:i, s:s, s:I, s:i}", "ev", "retry_scheduled",
            "seq", (json_int_t)seq_of(wf, e), "attempt", e->attempt + 1, "name", e->name,
            "due", (json_int_t)(wf->env->now_ms + after), "counted",
            e->attempt - e->throttles);
}

bt_future *bt_start(bt_wf *wf, const char *name, json_t *input,
                    const struct bt_step_opts *opts)
{
    bool fresh;
    struct bt_entry *e = take(wf, BT_ENTRY_ACTIVITY, name, &fresh);
    struct resolved r;
    bt_future *f = FUTURE_NONE;

    if (!input)
        input = json_null();
    if (!e)
        goto out;
    f = FUTURE(index_of(wf, e));
    if (!fresh && e->state != BT_ST_ATTEMPT_FAILED && e->state != BT_ST_REDISPATCH)
        goto out;
    r = resolve(wf, name, opts);
    if (fresh) {
        e->attempt = 1;
        dispatch(wf, e, input, &r);
    } else if (e->state == BT_ST_ATTEMPT_FAILED) {
        decide_retry(wf, e, input, &r);
    } else {
        e->attempt++;
        dispatch(wf, e, input, &r);
    }
out:
    json_decref(input);
    return f;
}

bt_future *bt_start_child(bt_wf *wf, const char *type, json_t *input,
                          const struct bt_step_opts *opts)
{
    bool fresh;
    struct bt_entry *e = take(wf, BT_ENTRY_CHILD, type, &fresh);
    bt_future *f = FUTURE_NONE;

    if (!input)
        input = json_null();
    if (!e)
        goto out;
    f = FUTURE(index_of(wf, e));
    if (fresh) {
        int64_t seq = (int64_t)seq_of(wf, e);
        char *child = opts && opts->id ? strdup(opts->id)
                                       : dupf("%s/%lld", wf->inst->id, (long long)seq);
        char *queue = bt_replay_queue_dup(opts ? opts->queue : NULL);
        unsigned pc = opts ? (unsigned)opts->on_parent_close : 0;
        const char *policy = close_policies[pc < 3 ? pc : 0];
        struct bt_msg msg = {.type = BT_MSG_START,
                             .id = child,
                             .workflow = (char *)(uintptr_t)type,
                             .queue = queue,
                             .body = input,
                             .parent_id = wf->inst->id,
                             .parent_queue = wf->inst->queue,
                             .on_parent_close = (char *)(uintptr_t)policy,
                             .seq = seq,
                             .ts = wf->env->now_ms};
        e->state = BT_ST_WAITING;
        /* while it runs, the entry knows where the child is, for close_children */
        bt_replay_set_json(&e->value, json_pack("{s:s, s:s*, s:s}", "child", child,
                                                "queue", queue, "on_close", policy));
        command(wf->inst, dupf("c|%lld", (long long)seq), bt_events_suffix(queue), child,
                &msg);
        history(wf->inst, wf->env, "{s:s, s:I, s:s, s:s, s:s, s:s, s:O}", "ev",
                "child_started", "seq", (json_int_t)seq, "workflow", type, "child", child,
                "queue", queue ? queue : "default", "on_parent_close", policy, "input",
                input);
        free(child);
        free(queue);
    }
out:
    json_decref(input);
    return f;
}

bt_poll bt_await(bt_wf *wf, bt_future *f, const json_t **result, const json_t **error)
{
    const struct bt_entry *e;

    if (result)
        *result = NULL;
    if (error)
        *error = NULL;
    if (f == FUTURE_NONE || !f || FUTURE_SEQ(f) >= wf->inst->n_entries)
        return BT_PENDING;
    e = &wf->inst->entries[FUTURE_SEQ(f)];
    if (e->state == BT_ST_DONE) {
        if (result)
            *result = e->value;
        return BT_READY;
    }
    if (e->state == BT_ST_FAILED) {
        if (error)
            *error = e->error;
        wf->last_error = e->error;
        return BT_FAILED;
    }
    return BT_PENDING;
}

bt_poll bt_await_all(bt_wf *wf, bt_future *const *fs, size_t n)
{
    bt_poll all = BT_READY;

    for (size_t i = 0; i < n; i++) {
        bt_poll p = bt_await(wf, fs[i], NULL, NULL);
        if (p == BT_FAILED)
            return BT_FAILED;
        if (p == BT_PENDING)
            all = BT_PENDING;
    }
    return all;
}

bt_poll bt_await_any(bt_wf *wf, bt_future *const *fs, size_t n, size_t *which)
{
    /* the lowest seq that is done wins: the same answer on every replay */
    for (size_t i = 0; i < n; i++) {
        bt_poll p = bt_await(wf, fs[i], NULL, NULL);
        if (p != BT_PENDING) {
            if (which)
                *which = i;
            return p;
        }
    }
    return BT_PENDING;
}

bt_poll bt_sleep(bt_wf *wf, int64_t ms)
{
    bool fresh;
    struct bt_entry *e = take(wf, BT_ENTRY_TIMER, "sleep", &fresh);

    if (!e)
        return BT_PENDING;
    if (fresh) {
        e->state = BT_ST_WAITING;
        set_timer(wf, "sleep", e, 0, wf->env->now_ms + (ms > 0 ? ms : 0));
        history(wf->inst, wf->env, "{s:s, s:I, s:I}", "ev", "sleep_started", "seq",
                (json_int_t)seq_of(wf, e), "due", (json_int_t)e->due);
    }
    if (e->state == BT_ST_FAILED) {
        wf->last_error = e->error;
        return BT_FAILED;
    }
    return e->state == BT_ST_DONE ? BT_READY : BT_PENDING;
}

/* Takes the first buffered signal called name; returns its payload (new ref). */
static json_t *unbuffer_signal(struct bt_instance *inst, const char *name)
{
    size_t i;
    json_t *pair;

    json_array_foreach(inst->signals, i, pair)
    {
        if (!strcmp(json_string_value(json_array_get(pair, 0)), name)) {
            json_t *payload = json_incref(json_array_get(pair, 1));
            json_array_remove(inst->signals, i);
            inst->delta.meta_dirty = true;
            return payload;
        }
    }
    return NULL;
}

bt_poll bt_wait_signal(bt_wf *wf, const char *name, int64_t timeout_ms,
                       const json_t **payload)
{
    bool fresh;
    struct bt_entry *e = take(wf, BT_ENTRY_SIGNAL, name, &fresh);

    if (payload)
        *payload = NULL;
    if (!e)
        return BT_PENDING;
    if (fresh) {
        json_t *buffered = unbuffer_signal(wf->inst, name);
        if (buffered) {
            e->state = BT_ST_DONE;
            e->value = buffered;
        } else {
            e->state = BT_ST_WAITING;
            if (timeout_ms >= 0)
                set_timer(wf, "signal_timeout", e, 0, wf->env->now_ms + timeout_ms);
            history(wf->inst, wf->env, "{s:s, s:I, s:s, s:I}", "ev", "signal_wait", "seq",
                    (json_int_t)seq_of(wf, e), "name", name, "timeout_ms",
                    (json_int_t)timeout_ms);
        }
    }
    if (e->state == BT_ST_FAILED) {
        wf->last_error = e->error;
        return BT_FAILED;
    }
    if (e->state != BT_ST_DONE)
        return BT_PENDING;
    if (payload)
        *payload = e->value;
    return BT_READY;
}

struct bt_entry *bt_replay_take(bt_wf *wf, char kind, const char *name, bool *fresh)
{
    return take(wf, kind, name, fresh);
}

struct bt_instance *bt_replay_instance(bt_wf *wf)
{
    return wf->inst;
}

const struct bt_replay_env *bt_replay_environment(bt_wf *wf)
{
    return wf->env;
}

int64_t bt_replay_seq(bt_wf *wf, const struct bt_entry *e)
{
    return (int64_t)seq_of(wf, e);
}

bool bt_cancel_requested(bt_wf *wf)
{
    return wf->inst->cancel_requested;
}

const char *bt_workflow_id(const bt_wf *wf)
{
    return wf->inst->id;
}

bt_poll bt_complete(bt_wf *wf, json_t *result)
{
    if (wf->nondet || wf->finished) {
        json_decref(result);
        return wf->nondet ? BT_PENDING : BT_READY;
    }
    wf->finished = true;
    bt_replay_finish(wf->inst, wf->env, BT_STATUS_COMPLETED,
                     result ? result : json_null(), NULL);
    return BT_READY;
}

bt_poll bt_continue_as_new(bt_wf *wf, json_t *input)
{
    if (wf->nondet || wf->finished) {
        json_decref(input);
        return wf->nondet ? BT_PENDING : BT_READY;
    }
    wf->finished = true;
    wf->continue_input = input ? input : json_null();
    return BT_READY;
}

int bt_workflow_run(const bt_wf *wf)
{
    return wf->inst->run;
}

static bt_poll fail_json(bt_wf *wf, json_t *error)
{
    if (wf->nondet || wf->finished) {
        json_decref(error);
        return wf->nondet ? BT_PENDING : BT_FAILED;
    }
    wf->finished = true;
    bt_replay_finish(wf->inst, wf->env, BT_STATUS_FAILED, NULL, error);
    return BT_FAILED;
}

bt_poll bt_fail(bt_wf *wf, const char *error_type, const char *fmt, ...)
{
    char text[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    return fail_json(wf, bt_replay_error(error_type, text));
}

bt_poll bt__fail_with(bt_wf *wf, const json_t *error)
{
    const json_t *err = error ? error : wf->last_error;
    const char *type = json_string_value(json_object_get(err, "type"));
    const char *message = json_string_value(json_object_get(err, "message"));

    return fail_json(wf,
                     bt_replay_error(type ? type : "StepFailed", message ? message : ""));
}
