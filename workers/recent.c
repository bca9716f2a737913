/* The attempts whose outcome was sent (recent.h): a ring of keys in the
 * order they came, and a map of them for the look-up. */
#include <stdlib.h>
#include <string.h>

#include "idmap.h"
#include "recent.h"

struct bt_recent {
    struct bt_idmap *set;
    char *ring[BT_RECENT_MAX];
    size_t next; /* the slot the next key takes: the oldest once full */
};

struct bt_recent *bt_recent_new(void)
{
    struct bt_recent *r = calloc(1, sizeof(*r));

    if (r && !(r->set = bt_idmap_new())) {
        free(r);
        r = NULL;
    }
    return r;
}

void bt_recent_destroy(struct bt_recent *r)
{
    if (!r)
        return;
    bt_idmap_destroy(r->set, NULL);
    for (size_t i = 0; i < BT_RECENT_MAX; i++)
        free(r->ring[i]);
    free(r);
}

void bt_recent_add(struct bt_recent *r, const char *key)
{
    char *copy;

    if (bt_idmap_get(r->set, key) || !(copy = strdup(key)))
        return;
    if (bt_idmap_put(r->set, copy, copy)) {
        free(copy);
        return;
    }
    if (r->ring[r->next]) {
        bt_idmap_del(r->set, r->ring[r->next]);
        free(r->ring[r->next]);
    }
    r->ring[r->next] = copy;
    r->next = (r->next + 1) % BT_RECENT_MAX;
}

bool bt_recent_has(const struct bt_recent *r, const char *key)
{
    return bt_idmap_get(r->set, key) != NULL;
}
