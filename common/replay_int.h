/* What replay.c shares with the operators' controls (control.c): the few
 * steps of applying an event that both take. Not part of any public API. */
#ifndef BT_REPLAY_INT_H
#define BT_REPLAY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#include "journal.h"
#include "replay.h"

/* Appends a history record: fmt and its arguments as bt_jw_pairs takes
 * them; the decision time and the worker are added. */
void bt_replay_record(struct bt_instance *inst, const struct bt_replay_env *env,
                      const char *fmt, ...);

/* {"type": type, "message": message}, new. */
json_t *bt_replay_error(const char *type, const char *message);

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

#endif
