/* The workflow role of baton-worker: consumes <prefix>.events (and
 * <prefix>.events.<queue>) in the "<prefix>.workflows" consumer group and
 * advances instances (docs/architecture.md#the-workflow-role). */
#ifndef BT_WFTASK_H
#define BT_WFTASK_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "metrics.h"
#include "registry.h"

struct bt_wftask;

struct bt_wftask_stats {
    uint64_t events;     /* applied */
    uint64_t duplicates; /* redelivered or stale, ignored */
    uint64_t dead;       /* sent to the DLQ */
    uint64_t conflicts;  /* commits that lost a race and were redone */
    uint64_t forwarded;  /* events of another queue's instances, passed on */
    uint64_t eager;      /* tasks handed to this worker's activity role */
    uint64_t commits;
    uint64_t batches;
};

/* Connects to Kafka and Redis as cfg says; reg and metrics (NULL: none) are
 * borrowed and must outlive the task, which registers its families in
 * metrics (docs/metrics.md). Returns NULL with errstr on a bad setting. */
struct bt_wftask *bt_wftask_new(const struct bt_config *cfg, const bt_registry *reg,
                                struct bt_metrics *metrics, const char *worker_name,
                                char *errstr, size_t errstr_size);
/* Polls one batch of events (waiting up to timeout_ms for the first) and
 * advances their instances; retries with backoff while Kafka or Redis is
 * unreachable, committing nothing it has not applied. Returns the number of
 * messages handled. */
int bt_wftask_poll(struct bt_wftask *wt, int timeout_ms);
const struct bt_wftask_stats *bt_wftask_stats(const struct bt_wftask *wt);
/* flag (borrowed; a signal handler may set it) makes bt_wftask_poll give up a
 * batch it is retrying (left uncommitted, so redelivered) and return. */
void bt_wftask_set_stop(struct bt_wftask *wt, const volatile sig_atomic_t *flag);

/* Eager dispatch (setting eager): this worker's activity role runs the tasks
 * it can start in time, without the two Kafka hops. fits(ctx, queue,
 * timeout_ms, more): whether it can take one more of queue with that
 * start-to-close after `more` marked for it in this batch; submit(ctx,
 * payload, len, owner): hand one over (copied). Their outcomes come back to
 * owner through bt_wftask_deliver(). */
struct bt_wftask_eager {
    bool (*fits)(void *ctx, const char *queue, int64_t timeout_ms, int more);
    void (*submit)(void *ctx, const char *payload, size_t len, struct bt_wftask *owner);
    void *ctx;
};
void bt_wftask_set_eager(struct bt_wftask *wt, const struct bt_wftask_eager *eager);
/* An event for an instance this worker advanced (an eager task's outcome),
 * from any thread (ctx: the wftask; copied). The next poll applies it while
 * this worker still owns the instance, else produces it to the instance's
 * events topic (suffix) for the owner. */
void bt_wftask_deliver(void *ctx, const char *suffix, const char *id, const char *payload,
                       size_t len);
/* Leaves the consumer group and frees everything. NULL is a no-op. */
void bt_wftask_destroy(struct bt_wftask *wt);

#endif
