/* Crashes of workflow code, kept in Redis so that the next worker does not
 * run the same code on the same events forever (fatal.h catches them, and
 * aborts code that loops for BT_CRASHES_HANG_MS of CPU).
 * When a worker dies in an instance's workflow code, "<kp>:{id}:crashes"
 * counts it (n, and the last one said in last; kept 30 days) and
 * "<kp>:crashed" says for 10 minutes that some instance's code crashed. A
 * worker that loads the instance (its cache died with the crashed worker)
 * reads the count (bt_store_load); at BT_CRASHES_MAX it blocks the instance,
 * WorkflowCrashed, instead of running the code: the events flow on, the
 * instance waits for a fixed deploy and `baton unblock`, which clears the
 * count. While "<kp>:crashed" lives, starts are loaded rather than assumed
 * new, so that a start whose code crashed is seen too. */
#ifndef BT_CRASHES_H
#define BT_CRASHES_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "instance.h"
#include "replay.h"
#include "store.h"

#define BT_CRASHES_MAX 2
/* CPU time one call of workflow code may take before it counts as hung
 * (a replay takes microseconds) */
#define BT_CRASHES_HANG_MS 10000
/* how long starts are loaded once a recent crash is known */
#define BT_CRASHES_CAREFUL_MS (10 * 60 * 1000)

struct bt_crashes;

/* Installs the fatal-signal handlers of fatal.h with a recorder on a store
 * of its own (connected when a crash comes). worker: host:pid (copied).
 * Returns the recorder, or NULL with errstr. */
struct bt_crashes *bt_crashes_install(const struct bt_config *cfg, const char *worker,
                                      char *errstr, size_t errstr_size);
/* Call once no thread runs plugin code any more. NULL is a no-op. */
void bt_crashes_destroy(struct bt_crashes *c);

/* 1 when some workflow code crashed a worker in the last 10 minutes, 0 when
 * not, BT_EAGAIN when Redis is unreachable. */
int bt_crashes_recent(struct bt_store *store);

/* Whether inst's code may run now. False when it crashed workers
 * BT_CRASHES_MAX times (it is blocked here, once), or when it was blocked
 * so before and no `baton unblock` came since. */
bool bt_crashes_may_run(struct bt_instance *inst, const struct bt_replay_env *env);

#endif
