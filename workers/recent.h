/* The attempts whose outcome this worker sent (Kafka confirmed it), the
 * last BT_RECENT_MAX of them: a copy of one fetched again (a rebalance gave
 * its partition back before the workflow role applied the outcome, or the
 * sweep re-sent an eager task after its heartbeat lapsed) is not run a
 * second time here. Consumer thread only. */
#ifndef BT_RECENT_H
#define BT_RECENT_H

#include <stdbool.h>

#define BT_RECENT_MAX 16384

struct bt_recent;

/* NULL when out of memory. */
struct bt_recent *bt_recent_new(void);
void bt_recent_destroy(struct bt_recent *r);

/* Remembers key (copied), forgetting the oldest past BT_RECENT_MAX. Out of
 * memory: not remembered (a copy may then run again: at least once). */
void bt_recent_add(struct bt_recent *r, const char *key);
bool bt_recent_has(const struct bt_recent *r, const char *key);

#endif
