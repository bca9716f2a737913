/* Eager tasks of a failed try: a commit whose reply was lost (Redis
 * restarted) may have gone through, and then its eager tasks sit in the
 * outbox, held by this worker, without ever reaching its activity role
 * (submission follows the commit). The retry notes them; when their
 * instance is loaded again, the ones its outbox still holds for this worker
 * are kept in its delta to be submitted, and the others (running here
 * already) are dropped from it.
 *   bt_unseen_note(&u, touched, n);   before a failed try's instances go
 *   bt_unseen_keep(&u, inst);         on each freshly loaded instance
 * A note is forgotten after UNSEEN_MS (its outcome came back another way). */
#ifndef BT_UNSEEN_H
#define BT_UNSEEN_H

#include <stddef.h>
#include <stdint.h>

#include "instance.h"

struct bt_unseen {
    struct bt_unseen_note {
        char *key;  /* "<id> <field>" */
        int64_t at; /* mono ms */
    } * notes;
    size_t n;
};

/* Notes the eager (local) commands in the deltas of insts[0..n). */
void bt_unseen_note(struct bt_unseen *u, struct bt_instance *const *insts, size_t n);
/* Filters inst's delta (loaded with this worker's held fields): keeps the
 * non-eager commands and the noted eager ones (forgetting their notes). */
void bt_unseen_keep(struct bt_unseen *u, struct bt_instance *inst);
void bt_unseen_release(struct bt_unseen *u);

#endif
