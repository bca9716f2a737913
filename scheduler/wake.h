/* The scheduler's sleep when nothing is due: until the earliest timer or
 * schedule it knows of, WAKE_MAX_MS at most, or until a message on
 * <key prefix>:wake, which commit.lua and schedule_update.lua publish when
 * they add a timer or schedule due within 2 s (sooner, perhaps, than the
 * planned wake-up). So an idle scheduler makes a few round trips a second
 * instead of one every 2 ms, and a new timer is not late for it. */
#ifndef BT_SCHED_WAKE_H
#define BT_SCHED_WAKE_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

/* The longest sleep: what a timer due within 2 s of its commit cannot miss
 * (commit.lua's horizon must stay above it, with room for clock skew). */
#define BT_WAKE_MAX_MS 1000

struct bt_wake;

/* A subscriber connection to cfg's Redis (made at the first sleep) on
 * <key_prefix>:wake. cfg is borrowed and must outlive the handle. NULL when
 * out of memory or the address is bad (errstr filled). */
struct bt_wake *bt_wake_new(const struct bt_config *cfg, const char *key_prefix,
                            char *errstr, size_t errstr_size);
/* NULL is a no-op. */
void bt_wake_destroy(struct bt_wake *w);

/* How long to sleep: until due_ms (wall clock; 0: nothing known) or the
 * monotonic deadline mono_ms, BT_WAKE_MAX_MS at most, and a few ms only
 * while fired timers wait for their delivery reports (their leases go at
 * the next claim). */
int bt_wake_timeout(int64_t due_ms, int64_t mono_ms, bool in_flight);

/* Sleeps up to timeout_ms, less when a wake-up message or a signal comes.
 * Returns at once after (re)subscribing, since what was published meanwhile
 * is lost. Without a subscription (Redis refused it, or is down) it naps
 * 2 ms, the poll interval of old, and tries to subscribe again every 5 s. */
void bt_wake_sleep(struct bt_wake *w, int timeout_ms);

#endif
