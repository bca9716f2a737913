/* Passes over the instances that came before a feature, one batch at a
 * time, each a ZSCAN of indexes with every page handed to a script (an entry
 * present for a whole scan is returned at least once, whatever is deleted
 * meanwhile), and a marker key that says the pass is done, so that it runs
 * once per Redis, whichever scheduler finishes it:
 * - retention: a commit puts every run it ends in the retention set, but
 *   instances finished by an older baton have no run there and would stay
 *   in Redis for ever. The status indexes of finished instances give each
 *   its run, due when it finished plus its retention
 *   (retention_backfill.lua); <kp>:retention:backfilled. Without shards
 *   only: sharded keys came after retention.
 * - counts: a commit counts the instances it starts by type and status
 *   (<kp>:counts, for baton stats), not those an older baton started. Each
 *   shard's index of all instances counts them (counts_backfill.lua);
 *   <kp>:counted per shard, in the shards this scheduler holds. */
#ifndef BT_SCHED_BACKFILL_H
#define BT_SCHED_BACKFILL_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "shard_lease.h"
#include "store.h"

/* Index entries per step (one ZSCAN and one script call), the pause between
 * two steps, and between two looks at shards held by others. */
#define BT_BACKFILL_BATCH    100
#define BT_BACKFILL_PACE_MS  200
#define BT_BACKFILL_AGAIN_MS 10000

enum bt_backfill_kind { BT_BACKFILL_RETENTION, BT_BACKFILL_COUNTS };

/* Where a pass is: zero it and set kind to start. */
struct bt_backfill {
    enum bt_backfill_kind kind;
    int shard;       /* the shard visited */
    int index;       /* which of its indexes */
    char cursor[32]; /* of its ZSCAN; "" before the first */
    bool checked;    /* the shard's marker was looked at */
    bool skipped;    /* a shard held by another was passed over this round */
    bool done;
    int64_t next_ms; /* monotonic */
    int64_t added;
};

/* One step of the pass, when its pace allows, in a shard lease holds.
 * Returns the entries added (>= 0) or BT_EAGAIN (Redis: the same step is
 * tried again later). */
int bt_backfill_step(struct bt_backfill *bf, const struct bt_config *cfg,
                     struct bt_store *store, const struct bt_shard_lease *lease);

/* When the next step is due (monotonic ms; INT64_MAX once done): the
 * scheduler's sleep must not outlast it, or the pace is its sleep's. */
static inline int64_t bt_backfill_next_ms(const struct bt_backfill *bf)
{
    return bf->done ? INT64_MAX : bf->next_ms;
}

#endif
