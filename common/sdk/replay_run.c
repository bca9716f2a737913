/* Running a replay (bt_replay_run, replay.h): the workflow function is
 * called on the journal (its calls are replay.c's), then the outcome is
 * settled: a replay that met nondeterminism is rolled back and the instance
 * blocked, never half-applied; a continue-as-new starts the next run; a
 * run past its history limit, or a decision whose message is too large, fails
 * the instance. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "baton.h"
#include "err.h"
#include "log.h"
#include "replay.h"
#include "replay_int.h"

static void drop_after(struct bt_delta *d, const struct bt_delta *before,
                       bool with_deletions);

static void rollback(bt_wf *wf, size_t n_before, const struct bt_delta *before)
{
    struct bt_instance *inst = wf->inst;
    struct bt_delta *d = &inst->delta;

    for (size_t i = wf->n_undo; i-- > 0;) {
        struct bt_entry *e = &inst->entries[wf->undo[i].seq];
        e->state = wf->undo[i].state;
        e->dirty = wf->undo[i].dirty;
        e->attempt = wf->undo[i].attempt;
        e->throttles = wf->undo[i].throttles;
        e->due = wf->undo[i].due;
    }
    while (inst->n_entries > n_before)
        bt_entry_release(&inst->entries[--inst->n_entries]);
    drop_after(d, before, true);
}

/* Drops the commands, added timers and history records d gained since
 * before; with_deletions: the timer deletions too. */
static void drop_after(struct bt_delta *d, const struct bt_delta *before,
                       bool with_deletions)
{
    while (d->n_cmds > before->n_cmds)
        bt_command_release(&d->cmds[--d->n_cmds]);
    while (d->n_timers_add > before->n_timers_add)
        free(d->timers_add[--d->n_timers_add].member);
    while (with_deletions && d->n_timers_del > before->n_timers_del)
        free(d->timers_del[--d->n_timers_del].member);
    while (d->n_history > before->n_history)
        free(d->history[--d->n_history]);
}

/* A decision with a command that no Kafka message can carry cannot be
 * carried out, and retrying it would wedge the partition: a task's input, a
 * result or a child's input over max-payload (PayloadTooLarge), or a message
 * its schema refuses, a queue name that can name no topic, say (the code gave
 * it: InvalidCommand). Its commands, new timers and records are dropped and
 * the instance fails instead. */
static void refuse_uncarried(struct bt_instance *inst, const struct bt_replay_env *env,
                             const struct bt_delta *before)
{
    struct bt_delta *d = &inst->delta;
    const struct bt_command *cmd = NULL;
    json_t *error;
    char text[600];
    size_t c;

    for (c = before->n_cmds; c < d->n_cmds && !cmd && env->max_message > 0; c++)
        if ((int64_t)d->cmds[c].len > env->max_message)
            cmd = &d->cmds[c];
    if (d->uncarried)
        snprintf(text, sizeof(text),
                 "the decision's message for %.300s breaks its schema: ids and names are "
                 "1 to %d bytes without control characters, a queue is " BT_QUEUE_RULE,
                 d->uncarried, BT_ID_MAX);
    else if (cmd)
        snprintf(text, sizeof(text),
                 "the decision's message for %s is %zu bytes, over the limit of %lld "
                 "(setting max-payload): pass large data by reference",
                 cmd->topic, cmd->len, (long long)env->max_message);
    else
        return;
    bt_log(BT_LOG_WARN, "instance failed: %s workflow=%s", text, inst->id);
    error = bt_replay_error(d->uncarried ? "InvalidCommand" : "PayloadTooLarge", text);
    free(d->uncarried);
    d->uncarried = NULL;
    drop_after(d, before, false);
    bt_replay_finish(inst, env, BT_STATUS_FAILED, NULL, error);
}

bool bt_replay_entry_timer(const struct bt_instance *inst, size_t i, const char **kind)
{
    const struct bt_entry *e = &inst->entries[i];

    *kind = NULL;
    if (e->kind == BT_ENTRY_ACTIVITY && e->state == BT_ST_WAITING)
        *kind = "timeout";
    else if (e->kind == BT_ENTRY_ACTIVITY && e->state == BT_ST_BACKOFF)
        *kind = "retry";
    else if (e->kind == BT_ENTRY_TIMER && e->state == BT_ST_WAITING)
        *kind = "sleep";
    else if (e->kind == BT_ENTRY_SIGNAL && e->state == BT_ST_WAITING)
        *kind = "signal_timeout";
    return *kind != NULL;
}

void bt_replay_drop_entry_timer(struct bt_instance *inst, size_t i)
{
    const char *kind;

    if (bt_replay_entry_timer(inst, i, &kind))
        bt_replay_drop_timer(
            inst, kind, inst->base + (int64_t)i,
            inst->entries[i].kind == BT_ENTRY_ACTIVITY ? inst->entries[i].attempt : 0);
}

/* Continue-as-new: the run ends and the next one starts with input (stolen)
 * and an empty journal whose seqs follow the old ones, so that late outcomes
 * of the old run's steps find nothing to apply to. */
static void next_run(struct bt_instance *inst, const struct bt_replay_env *env,
                     json_t *input)
{
    struct bt_delta *d = &inst->delta;

    bt_replay_close_children(inst, env, "continued as new");
    for (size_t i = 0; i < inst->n_entries; i++)
        bt_replay_drop_entry_timer(inst, i);
    bt_replay_record(inst, env, "{s:s, s:i, s:O}", "ev", "continued_as_new", "next_run",
                     inst->run + 1, "input", input);
    bt_replay_end_run(inst);
    bt_replay_set_json(&inst->input, input);
    d->meta_dirty = true;
    bt_replay_record(inst, env, "{s:s, s:s, s:i, s:O}", "ev", "started", "workflow",
                     inst->type, "run", inst->run, "input", inst->input);
}

/* History records of the current run, committed and pending. */
static int64_t run_history(const struct bt_instance *inst)
{
    const struct bt_delta *d = &inst->delta;

    return (d->reset ? 0 : inst->hlen) +
           (int64_t)(d->n_history - (d->reset ? d->reset_history : 0));
}

int bt_replay_run(struct bt_instance *inst, const struct bt_replay_env *env)
{
    const struct bt_workflow_def *def = bt_registry_workflow(env->reg, inst->type);
    struct bt_delta before = inst->delta;
    size_t n_before = inst->n_entries;
    json_t *signals_before = inst->signals ? json_deep_copy(inst->signals) : NULL;
    bool was_blocked = inst->status == BT_STATUS_BLOCKED;

    if (inst->status != BT_STATUS_RUNNING && !was_blocked) {
        json_decref(signals_before);
        return 0;
    }
    if (!def) {
        json_decref(signals_before);
        return BT_ENOENT;
    }
    for (int runs = 0;; runs++) {
        bt_wf wf = {.inst = inst, .env = env};
        bt_poll p = def->fn(&wf, inst->input);

        if (wf.nondet) {
            rollback(&wf, n_before, &before);
            bt_replay_set_json(&inst->signals, signals_before);
            signals_before = NULL;
            if (!was_blocked) {
                inst->status = BT_STATUS_BLOCKED;
                inst->delta.meta_dirty = true;
                bt_replay_record(inst, env, "{s:s, s:O}", "ev", "blocked", "error",
                                 inst->error);
                bt_log(BT_LOG_WARN, "instance blocked: %s workflow=%s",
                       json_string_value(json_object_get(inst->error, "message")),
                       inst->id);
            }
            free(wf.undo);
            break;
        }
        bt_attributes_merge(inst, runs == 0 ? n_before : 0); /* a new run: all */
        if (runs == 0 && was_blocked && !(wf.finished && !wf.continue_input)) {
            inst->status = BT_STATUS_RUNNING;
            bt_replay_set_json(&inst->error, NULL);
            inst->delta.meta_dirty = true;
            bt_replay_record(inst, env, "{s:s}", "ev", "unblocked");
        }
        free(wf.undo);
        if (wf.continue_input && runs == 0) {
            next_run(inst, env, wf.continue_input);
            continue;
        }
        if (wf.continue_input) {
            /* a run that continues before waiting on anything would loop here */
            json_decref(wf.continue_input);
            wf.finished = false;
            bt_fail(&wf, "ContinueAsNewLoop",
                    "run %d continued as new before waiting on any step", inst->run);
        } else if (!wf.finished && p == BT_READY) {
            bt_complete(&wf, NULL);
        } else if (!wf.finished && p == BT_FAILED) {
            bt__fail_with(&wf, NULL);
        }
        if (inst->status == BT_STATUS_RUNNING && env->history_max > 0 &&
            run_history(inst) > env->history_max) {
            wf.finished = false;
            bt_fail(&wf, "HistoryLimitExceeded",
                    "run %d of this instance has %lld history records, more than the "
                    "limit of %lld (setting history-max); a workflow that loops for "
                    "long should call bt_continue_as_new() now and then",
                    inst->run, (long long)run_history(inst), (long long)env->history_max);
        }
        break;
    }
    json_decref(signals_before);
    if (inst->status != BT_STATUS_BLOCKED)
        refuse_uncarried(inst, env, &before);
    return 0;
}

int bt_replay_block(struct bt_instance *inst, const struct bt_replay_env *env,
                    const char *type, const char *message)
{
    json_t *error = json_pack("{s:s, s:s}", "type", type, "message", message);

    if (!error)
        return BT_ENOMEM;
    bt_replay_set_json(&inst->error, error);
    inst->delta.meta_dirty = true;
    inst->status = BT_STATUS_BLOCKED;
    bt_replay_record(inst, env, "{s:s, s:O}", "ev", "blocked", "error", inst->error);
    bt_log(BT_LOG_WARN, "instance blocked: %s workflow=%s", message, inst->id);
    return 0;
}
