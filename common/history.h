/* The audit history of an instance's runs in Redis
 * (docs/architecture.md#redis-keys): a list per run, "<kp>:{ID}:h" for the
 * current run and "<kp>:{ID}:h:<run>" for a run that continued as new, one
 * element per record, each record packed (bt_history_pack). Redis before
 * this kept a stream per run (":history", ":history:<run>", each entry a
 * decision's records as "e" fields); a run written then is still read, its
 * stream records first, and an instance that was running at the upgrade
 * appends to the list from there on. Readers go through bt_history_read. */
#ifndef BT_HISTORY_H
#define BT_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Packs the JSON record src[0..len) into dst (room for len + 1 bytes) and
 * returns its length. JSON text never holds a byte below 0x20 (those are
 * escaped), so such bytes mark what packing put in: a name from a fixed
 * table of the texts records repeat, or 0x1e and a varint for a run of 6 to
 * 18 digits. A record that holds such a byte all the same is kept as it is
 * behind 0x1f (one byte longer). The table only grows at its end: records
 * in Redis depend on it. */
size_t bt_history_pack(char *dst, const char *src, size_t len);

/* The JSON text of a packed record (or of a plain one, which is itself):
 * a new string, caller frees; NULL when out of memory or when the record
 * is corrupt (an unknown mark, a cut number). */
char *bt_history_unpack(const char *src, size_t len);

/* The records of one run, read from Redis. */
struct bt_history {
    char **records; /* JSON texts, owned */
    size_t n;
    /* list elements plus stream entries: what retention_delete.lua counts
     * again to see that the run's history did not change since it was read */
    int64_t entries;
};

void bt_history_init(struct bt_history *h);
void bt_history_release(struct bt_history *h);

/* Reads run `run` (0: the current run) of instance id, the records from
 * index `from` on (0: all) into h (released first). Returns 0, BT_EAGAIN
 * (Redis unreachable or refusing) or BT_EINVALMSG (a record that does not
 * unpack: h holds those before it). Not thread safe: uses store's
 * connection. */
int bt_history_read(struct bt_store *store, const char *id, int run, size_t from,
                    struct bt_history *h);

/* The list key of run `run` (0: the current run) of id into buf. */
char *bt_history_key(const struct bt_store *store, const char *id, int run, char *buf,
                     size_t n);

/* The channel a commit that appends history publishes on (the new length),
 * for `baton history --follow` and `start --wait`: "<kp>:{ID}:h". */
#define bt_history_channel bt_history_key

#endif
