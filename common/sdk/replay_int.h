/* What the parts of the replay engine share: replay.c (the SDK's workflow
 * side: the calls the code makes), replay_run.c (running the code),
 * replay_recorded.c (side effects and patch markers), apply.c (applying
 * events), control.c (pause, resume, reset) and attributes.c. Not part of
 * any public API. */
#ifndef BT_REPLAY_INT_H
#define BT_REPLAY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "baton.h"
#include "instance.h"
#include "replay.h"

/* A saved entry, to roll a replay back when it meets nondeterminism. */
struct bt_replay_undo {
    size_t seq;
    uint8_t state;
    bool dirty;
    int attempt, throttles;
    int64_t due;
};

/* One replay: the code's calls walk the journal with cursor (replay.c),
 * replay_run.c starts it and settles what it decided. */
struct bt_wf {
    struct bt_instance *inst;
    const struct bt_replay_env *env;
    size_t cursor;
    bool nondet;
    bool finished;
    const json_t *last_error; /* of the step that failed an await_all/any */
    json_t *continue_input;   /* bt_continue_as_new() was called: the next run's */
    struct bt_replay_undo *undo;
    size_t n_undo, cap_undo;
};

/* Appends a history record: fmt and its arguments as bt_jw_pairs takes
 * them; the decision time and the worker are added. */
void bt_replay_record(struct bt_instance *inst, const struct bt_replay_env *env,
                      const char *fmt, ...);

/* {"type": type, "message": message}, new. */
json_t *bt_replay_error(const char *type, const char *message);

/* A workflow queue as the instance keeps it: NULL for "default" (new). */
char *bt_replay_queue_dup(const char *queue);

/* Replaces *slot by value (stolen), releasing the old one. */
void bt_replay_set_json(json_t **slot, json_t *value);

/* Takes the timer "<kind>|<seq>|<attempt>|<id>" out of the timers set. */
void bt_replay_drop_timer(struct bt_instance *inst, const char *kind, int64_t seq,
                          int attempt);

/* Ends the instance with status and its result or error (both stolen): its
 * timers dropped, its children closed, its result (and its parent's event)
 * in the outbox. A cancel that ends in "Cancelled" is cancelled. */
void bt_replay_finish(struct bt_instance *inst, const struct bt_replay_env *env,
                      enum bt_status status, json_t *result, json_t *error);

/* Whether entries[i] has a timer in the timers set while it waits (its
 * kind: "timeout", "retry", "sleep", "signal_timeout"); the timer is due at
 * the entry's due, with the entry's attempt for an activity, else 0. */
bool bt_replay_entry_timer(const struct bt_instance *inst, size_t i, const char **kind);

/* Takes the timer of entries[i] out of the timers set, when it has one. */
void bt_replay_drop_entry_timer(struct bt_instance *inst, size_t i);

/* The running children get their parent-close policy (why: "reset", ...). */
void bt_replay_close_children(struct bt_instance *inst, const struct bt_replay_env *env,
                              const char *why);

/* Ends the current run's journal: the records so far belong to it (its
 * history is kept under its own key and archived), the next run's seqs
 * follow its own. */
void bt_replay_end_run(struct bt_instance *inst);

/* The journal entry the code's next call stands for (a new one appended
 * when the journal ends: *fresh), or NULL after nondeterminism (the replay
 * is then rolled back) or once the code finished. */
struct bt_entry *bt_replay_take(bt_wf *wf, char kind, const char *name, bool *fresh);
/* The instance a replay runs, its environment, and the seq of one entry. */
struct bt_instance *bt_replay_instance(bt_wf *wf);
const struct bt_replay_env *bt_replay_environment(bt_wf *wf);
int64_t bt_replay_seq(bt_wf *wf, const struct bt_entry *e);

/* After a replay that stands: the search attributes entries[from..) set,
 * merged into inst->attrs (attributes.c). */
void bt_attributes_merge(struct bt_instance *inst, size_t from);

#endif
