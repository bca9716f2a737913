/* Eager tasks of a failed try (unseen.h). Few notes at a time (one per
 * eager task of a try that failed, while Redis was away): a flat array. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "unseen.h"

/* How long a noted eager task waits for its instance to be loaded again: its
 * outcome may come back through Kafka, forwarded, after a cache clear. */
#define UNSEEN_MS 300000

static char *note_key(const char *id, const char *field)
{
    size_t il = strlen(id), fl = strlen(field);
    char *k = malloc(il + fl + 2);

    BT_ASSERT(k);
    memcpy(k, id, il);
    k[il] = ' ';
    memcpy(k + il + 1, field, fl + 1);
    return k;
}

static void drop(struct bt_unseen *u, size_t i)
{
    free(u->notes[i].key);
    u->notes[i] = u->notes[--u->n];
}

void bt_unseen_note(struct bt_unseen *u, struct bt_instance *const *insts, size_t n)
{
    int64_t now = bt_clock_mono_ms();

    for (size_t i = u->n; i-- > 0;)
        if (now - u->notes[i].at > UNSEEN_MS)
            drop(u, i);
    for (size_t i = 0; i < n; i++) {
        const struct bt_delta *d = &insts[i]->delta;
        for (size_t c = 0; c < d->n_cmds; c++) {
            struct bt_unseen_note *grown;
            if (!d->cmds[c].local)
                continue;
            grown = realloc(u->notes, (u->n + 1) * sizeof(*grown));
            BT_ASSERT(grown);
            u->notes = grown;
            u->notes[u->n++] =
                (struct bt_unseen_note){note_key(insts[i]->id, d->cmds[c].field), now};
        }
    }
}

void bt_unseen_keep(struct bt_unseen *u, struct bt_instance *inst)
{
    struct bt_delta *d = &inst->delta;
    size_t k = 0;

    for (size_t c = 0; c < d->n_cmds; c++) {
        bool keep = !d->cmds[c].local;
        if (!keep && u->n) {
            char *key = note_key(inst->id, d->cmds[c].field);
            for (size_t i = 0; !keep && i < u->n; i++)
                if ((keep = !strcmp(key, u->notes[i].key)))
                    drop(u, i);
            free(key);
        }
        if (keep)
            d->cmds[k++] = d->cmds[c];
        else
            bt_command_release(&d->cmds[c]);
    }
    d->n_cmds = k;
}

void bt_unseen_release(struct bt_unseen *u)
{
    while (u->n)
        drop(u, 0);
    free(u->notes);
    u->notes = NULL;
}
