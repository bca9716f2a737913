/* What store.c and store_commit.c share: the store's insides and its
 * queue of outbox removals owed a reply. Not for other modules. */
#ifndef BT_STORE_INT_H
#define BT_STORE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* An ack.lua call kept until Redis has answered it. After a broken
 * connection it is appended again ahead of the next load or commit: a removal
 * lost to a Redis restart would let the scheduler's sweep send a delivered
 * command again (a second result message). */
struct forget {
    struct forget *next;
    int nkeys, argc;
    const char **argv; /* into texts */
    size_t *lens;
    char texts[];
};

/* Forgets kept at most: more only while Redis stays away, and then the
 * workflow role stops landing batches long before (MAX_FLIGHTS). */
#define MAX_FORGETS 4096

struct bt_store {
    struct bt_redis *r;
    char *kp;               /* key prefix */
    int shards;             /* cfg's redis_shards: 0, or the hash tags {0}.. */
    char *kp0;              /* shard 0's prefix: the schedules' */
    struct forget *forgets; /* not answered yet, oldest first */
    size_t n_forgets;
    size_t owed;  /* the first `owed` forgets are in the pipeline, replies due */
    char *holder; /* its held outbox fields are loaded (bt_store_set_holder) */
    /* the retention settings, copied: when a finished run is deleted */
    int64_t retention_ms;
    char **retention_types;
    size_t n_retention_types;
};

/* Appends the outbox removals not in the pipeline yet, ahead of whatever is
 * appended next; reads the replies owed to those in the pipeline (they come
 * first). 0, BT_ENOMEM or BT_EAGAIN. */
int bt__store_append_forgets(struct bt_store *store);
int bt__store_read_owed(struct bt_store *store);

/* store_commit.c: appends to a the keys, then the arguments, of inst's
 * commit.lua call, laid out as commit_proto.h declares them; returns how many
 * are keys. Reads store's key prefix and retention settings only, no
 * connection: pure, so a unit test can check the layout without Redis.
 * Borrows texts of inst (bt_argbuf_str): they must outlive a's use. */
struct bt_argbuf;
int bt__store_commit_args(const struct bt_store *store, const struct bt_instance *inst,
                          int64_t now_ms, struct bt_argbuf *a);

#endif
