/* The worker's heartbeat in Redis: <kp>:alive:<worker> exists while the
 * process lives (refreshed every second, expiring 5 s after the last
 * refresh, deleted at a clean stop), and so does <kp>:serving:<queue> for
 * each queue it serves while one worker of the queue lives. The outbox sweep
 * reads the first to tell an eager task still running on its worker from
 * one that died with it; `baton start` the second, to warn about a start
 * that no worker will take, and the types sets, to refuse one of a type no
 * worker runs. */
#ifndef BT_ALIVE_H
#define BT_ALIVE_H

#include <stddef.h>

#include "config.h"
#include "metrics.h"

struct bt_alive;

/* Starts the heartbeat of worker (its name, as in the outbox fields) on its
 * own thread and Redis connection. types (borrowed until bt_alive_stop, may
 * be NULL when n_types is 0): the workflow types it runs, kept in
 * <kp>:types:<queue> for each queue it serves (a sorted set, each type scored
 * by its expiry in ms, refreshed with the rest), for `baton start` to refuse
 * a type no live worker runs. rate_waiting (borrowed, may be NULL): the
 * gauge of this worker's tasks waiting per rate key, shared every beat in
 * Redis for operators (ratelimit.h). NULL with errstr filled. */
struct bt_alive *bt_alive_start(const struct bt_config *cfg, const char *worker,
                                const char **types, size_t n_types,
                                struct bt_metric *rate_waiting, char *errstr,
                                size_t errstr_size);
/* Stops it and deletes the key. NULL is a no-op. */
void bt_alive_stop(struct bt_alive *a);

#endif
