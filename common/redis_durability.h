/* Whether the Redis baton writes to keeps what it acknowledged. baton's
 * promises (nothing lost, nothing twice) rest on it: a Redis that evicts
 * keys under memory pressure (any maxmemory-policy but noeviction) drops
 * journals and outboxes silently, and one without its append-only file
 * loses the last decisions at a restart. Neither is refused (a test Redis,
 * a cache someone shares on purpose), but each is logged as an error once
 * per process, naming the setting to change. */
#ifndef BT_REDIS_DURABILITY_H
#define BT_REDIS_DURABILITY_H

#include "redis.h"

/* Reads INFO (persistence, memory) of each master of r and logs what
 * would lose data. Returns 1 when it could tell (said or not), 0 when Redis
 * did not answer (look again later); INFO refused (an ACL user without it)
 * counts as told: nothing is said. */
int bt_redis_durability_check(struct bt_redis *r);

#endif
