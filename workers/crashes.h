/* Crashes of workflow code, kept in Redis so that the next worker does not
 * run the same code on the same events forever (fatal.h catches them, and
 * aborts code that loops for BT_CRASHES_HANG_MS of CPU).
 * When a worker dies in an instance's workflow code, "<kp>:{id}:crashes"
 * counts it (n, and the last one said in last; kept 30 days), and the hash
 * "<kp>:crashed" counts per workflow type the instances whose code crashed,
 * for 10 minutes after the last crash. A worker that loads the instance (its
 * cache died with the crashed worker) reads the count (bt_store_load); at
 * BT_CRASHES_MAX it blocks the instance, WorkflowCrashed, instead of running
 * the code: the events flow on, the instance waits for a fixed deploy and
 * `baton unblock`, which clears the count. A type whose code crashed in
 * BT_CRASHES_TYPE_MAX instances is a bad deploy, not one input: its other
 * instances are blocked the same way as their events come, before their code
 * runs (a deploy that crashes every instance costs a few crashes, not two
 * per instance), until `baton unblock` (--query for all of them) after the
 * fix. While "<kp>:crashed" lives, starts are loaded rather than assumed new,
 * so that a start whose code crashed is seen too. */
#ifndef BT_CRASHES_H
#define BT_CRASHES_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "instance.h"
#include "replay.h"
#include "store.h"

#define BT_CRASHES_MAX 2
/* instances of one type whose code crashed, within 10 minutes of each
 * other, that stop the type */
#define BT_CRASHES_TYPE_MAX 3
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

/* What a worker knows of recent crashes: until when (ms, bt_clock_now_ms;
 * 0: none known) and the types stopped meanwhile. */
struct bt_crashes_seen {
    int64_t until;
    char **stopped;
    size_t n_stopped;
};

/* Reads "<kp>:crashed" into seen (cleared first). Returns 0, or BT_EAGAIN
 * when Redis is unreachable (seen then empty). */
int bt_crashes_read(struct bt_store *store, struct bt_crashes_seen *seen);
void bt_crashes_seen_clear(struct bt_crashes_seen *seen);

/* Whether inst's code may run now. False when it crashed workers
 * BT_CRASHES_MAX times, or its type is stopped in seen (it is blocked here,
 * once), or when it was blocked so before and no `baton unblock` came
 * since. */
bool bt_crashes_may_run(struct bt_instance *inst, const struct bt_replay_env *env,
                        const struct bt_crashes_seen *seen);

#endif
