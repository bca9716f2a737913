/* The replay engine: applies events to an instance and re-runs its workflow
 * code against the journal, producing the next decision (new journal entries,
 * commands for the outbox, timers, history records) in inst->delta. Pure
 * computation: no I/O, so the worker, `baton replay-check` and the tests share
 * it. Not thread safe per instance; different instances may be advanced on
 * different threads at once. */
#ifndef BT_REPLAY_H
#define BT_REPLAY_H

#include <stdint.h>

#include "codec.h"
#include "instance.h"
#include "registry.h"

/* The signal `baton unblock` sends: it makes a blocked instance replay again
 * (after a compatible deploy) and is never delivered to workflow code. */
#define BT_SIGNAL_UNBLOCK "$unblock"

struct bt_replay_env {
    const bt_registry *reg;
    int64_t now_ms;               /* decision time, wall clock */
    int64_t default_timeout_ms;   /* start-to-close when nothing else says */
    int64_t schedule_to_start_ms; /* how long a task may wait for a worker,
                                   * on top of start-to-close (0: no wait) */
    const char *worker;           /* recorded in history: who decided */
    int64_t history_max;          /* history records per run; more fails the
                                   * instance (HistoryLimitExceeded). 0: no limit */
    int64_t max_message;          /* bytes of a command's message; a larger one
                                   * fails the instance (PayloadTooLarge) instead
                                   * of being produced. 0: no limit */
};

/* Applies one event (start, signal, cancel, completed, failed, timer,
 * child_*) to inst. Returns 0 when applied; BT_EEXIST when it is a duplicate or
 * stale (already applied, an old attempt, a finished instance's late result):
 * ignore it; BT_ENOENT when the instance does not exist (event before start)
 * or the workflow type is unknown; BT_ESTATE when the instance is finished
 * and the event needs a live one (a signal); BT_EINVALMSG for an activity
 * outcome no task of the instance could have produced (a seq never
 * scheduled, an attempt never started, another activity's name). *why
 * (static text) says which. */
int bt_replay_apply(struct bt_instance *inst, const struct bt_msg *msg,
                    const struct bt_replay_env *env, const char **why);

/* Runs the workflow code of a running (or blocked) instance and records the
 * decision in inst->delta and its entries. A journal that does not match the
 * code puts the instance in BT_STATUS_BLOCKED with the mismatch in inst->error
 * and changes nothing else. Returns 0, BT_ENOENT when its workflow type is not
 * registered here, or BT_ENOMEM. */
int bt_replay_run(struct bt_instance *inst, const struct bt_replay_env *env);

/* Blocks an instance without running its code, with the error
 * {"type": type, "message": message} and a history record, as
 * nondeterminism does: the worker's way to stop an instance whose code
 * keeps crashing workers. Returns 0 or BT_ENOMEM. */
int bt_replay_block(struct bt_instance *inst, const struct bt_replay_env *env,
                    const char *type, const char *message);

#endif
