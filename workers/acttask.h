/* The activity role of baton-worker: consumes <prefix>.tasks.<queue> for the
 * queues it serves in the "<prefix>.activities" consumer group, runs each
 * attempt on a thread pool and produces its completion event
 * (docs/architecture.md#the-activity-role). */
#ifndef BT_ACTTASK_H
#define BT_ACTTASK_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "metrics.h"
#include "registry.h"

struct bt_acttask;

struct bt_acttask_stats {
    uint64_t started;   /* attempts run */
    uint64_t completed; /* ... that succeeded */
    uint64_t failed;    /* ... that failed */
    uint64_t stale;     /* tasks skipped: step done or attempt superseded */
    uint64_t dead;      /* tasks sent to the DLQ */
    uint64_t twins;     /* copies of an attempt already held here, not run */
};

/* Starts the consumer thread and cfg->concurrency activity threads. reg and
 * metrics (NULL: none) are borrowed and must outlive the task, which
 * registers its families in metrics (docs/metrics.md). Returns NULL with
 * errstr on failure. */
struct bt_acttask *bt_acttask_new(const struct bt_config *cfg, const bt_registry *reg,
                                  struct bt_metrics *metrics, const char *worker_name,
                                  char *errstr, size_t errstr_size);
/* Eager dispatch: whether this role can take one more task of queue, with a
 * start-to-close of timeout_ms, after `more` it was just given: it serves
 * queue, has room in its buffer, and would start it in time (pace.h).
 * Thread safe. */
bool bt_acttask_eager_fits(struct bt_acttask *at, const char *queue, int64_t timeout_ms,
                           int more);
/* Runs an encoded task here, without Kafka: it goes through the same checks
 * (slot, token) and its outcome goes to the deliver function set below, with
 * owner. A task without a concurrency or rate key goes straight into the
 * activity threads' queue (nothing to ask Redis for). payload is copied.
 * Out of memory aborts: the caller has handed the task over and has no way
 * back (CONTRIBUTING.md, "Out of memory"). Thread safe. */
void bt_acttask_submit(struct bt_acttask *at, const char *payload, size_t len,
                       void *owner);
/* Where the outcomes of submitted tasks go: deliver(owner, events topic
 * suffix, instance id, encoded event, len), called from activity threads; it
 * copies what it keeps. Set before the first bt_acttask_submit(). */
void bt_acttask_on_local_outcome(struct bt_acttask *at,
                                 void (*deliver)(void *owner, const char *suffix,
                                                 const char *id, const char *payload,
                                                 size_t len));

/* A snapshot of the counters (thread safe). */
struct bt_acttask_stats bt_acttask_stats(struct bt_acttask *at);
/* Stops taking tasks, lets running attempts finish and report, leaves the
 * group and frees everything. NULL is a no-op. */
void bt_acttask_destroy(struct bt_acttask *at);

#endif
