/* A hash map from instance id to a pointer: the worker's cache of instances
 * of the partitions it owns. Not thread safe. */
#ifndef BT_IDMAP_H
#define BT_IDMAP_H

#include <stddef.h>

struct bt_idmap;

/* Returns a new empty map (bt_idmap_destroy), or NULL. */
struct bt_idmap *bt_idmap_new(void);
/* Frees the map; free_value (may be NULL) is called on each value. */
void bt_idmap_destroy(struct bt_idmap *map, void (*free_value)(void *));

/* Borrowed value for id, or NULL. */
void *bt_idmap_get(const struct bt_idmap *map, const char *id);
/* Sets id (copied) -> value. Returns 0 or BT_ENOMEM. */
int bt_idmap_put(struct bt_idmap *map, const char *id, void *value);
/* Removes id and returns its value (the caller frees it), or NULL. */
void *bt_idmap_del(struct bt_idmap *map, const char *id);
/* Removes everything, calling free_value on each value. */
void bt_idmap_clear(struct bt_idmap *map, void (*free_value)(void *));
size_t bt_idmap_size(const struct bt_idmap *map);

#endif
