/* Retention for instances that finished before it existed: a commit puts
 * every run it ends in the retention set, but instances finished by an older
 * baton have no run there and would stay in Redis for ever. One pass over
 * the status indexes of finished instances gives each of them its run, due
 * when it finished plus its retention (retention_backfill.lua), a batch at a
 * time; a marker key (<kp>:retention:backfilled) says the pass is done, so
 * it runs once per Redis, whichever scheduler finishes it. */
#ifndef BT_SCHED_BACKFILL_H
#define BT_SCHED_BACKFILL_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "store.h"

/* Index entries per step (one ZSCAN and one script call), and the pause
 * between two steps. */
#define BT_BACKFILL_BATCH   100
#define BT_BACKFILL_PACE_MS 200

/* Where the pass is (zero it to start). */
struct bt_backfill {
    int index;       /* which status index: completed, failed, cancelled, terminated */
    char cursor[32]; /* of its ZSCAN; "" before the first */
    bool checked;    /* the marker was looked at */
    bool done;
    int64_t next_ms; /* monotonic */
    int64_t added;
};

/* One step of the pass, when its pace allows. Returns the runs added (>= 0)
 * or BT_EAGAIN (Redis: the same step is tried again later). */
int bt_backfill_step(struct bt_backfill *bf, const struct bt_config *cfg,
                     struct bt_store *store);

#endif
