/* Separate chaining with FNV-1a hashes, doubling at load factor 1. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "idmap.h"

struct node {
    struct node *next;
    uint64_t hash;
    void *value;
    char id[];
};

struct bt_idmap {
    struct node **buckets;
    size_t n_buckets; /* a power of two */
    size_t size;
};

static uint64_t hash_id(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

struct bt_idmap *bt_idmap_new(void)
{
    struct bt_idmap *map = calloc(1, sizeof(*map));

    if (!map)
        return NULL;
    map->n_buckets = 64;
    if (!(map->buckets = calloc(map->n_buckets, sizeof(*map->buckets)))) {
        free(map);
        return NULL;
    }
    return map;
}

void bt_idmap_clear(struct bt_idmap *map, void (*free_value)(void *))
{
    for (size_t i = 0; i < map->n_buckets; i++) {
        struct node *n = map->buckets[i], *next;
        for (; n; n = next) {
            next = n->next;
            if (free_value)
                free_value(n->value);
            free(n);
        }
        map->buckets[i] = NULL;
    }
    map->size = 0;
}

void bt_idmap_destroy(struct bt_idmap *map, void (*free_value)(void *))
{
    if (!map)
        return;
    bt_idmap_clear(map, free_value);
    free(map->buckets);
    free(map);
}

void *bt_idmap_get(const struct bt_idmap *map, const char *id)
{
    uint64_t h = hash_id(id);

    for (struct node *n = map->buckets[h & (map->n_buckets - 1)]; n; n = n->next)
        if (n->hash == h && !strcmp(n->id, id))
            return n->value;
    return NULL;
}

static void grow(struct bt_idmap *map)
{
    size_t nb = map->n_buckets * 2;
    struct node **buckets = calloc(nb, sizeof(*buckets));

    if (!buckets)
        return; /* stay at the old size: slower, still correct */
    for (size_t i = 0; i < map->n_buckets; i++) {
        struct node *n = map->buckets[i], *next;
        for (; n; n = next) {
            next = n->next;
            n->next = buckets[n->hash & (nb - 1)];
            buckets[n->hash & (nb - 1)] = n;
        }
    }
    free(map->buckets);
    map->buckets = buckets;
    map->n_buckets = nb;
}

int bt_idmap_put(struct bt_idmap *map, const char *id, void *value)
{
    uint64_t h = hash_id(id);
    size_t len = strlen(id);
    struct node *n;

    for (n = map->buckets[h & (map->n_buckets - 1)]; n; n = n->next)
        if (n->hash == h && !strcmp(n->id, id)) {
            n->value = value;
            return 0;
        }
    if (!(n = malloc(sizeof(*n) + len + 1)))
        return BT_ENOMEM;
    n->hash = h;
    n->value = value;
    memcpy(n->id, id, len + 1);
    n->next = map->buckets[h & (map->n_buckets - 1)];
    map->buckets[h & (map->n_buckets - 1)] = n;
    if (++map->size > map->n_buckets)
        grow(map);
    return 0;
}

void *bt_idmap_del(struct bt_idmap *map, const char *id)
{
    uint64_t h = hash_id(id);
    struct node **p = &map->buckets[h & (map->n_buckets - 1)];

    for (; *p; p = &(*p)->next) {
        struct node *n = *p;
        if (n->hash == h && !strcmp(n->id, id)) {
            void *value = n->value;
            *p = n->next;
            free(n);
            map->size--;
            return value;
        }
    }
    return NULL;
}

size_t bt_idmap_size(const struct bt_idmap *map)
{
    return map->size;
}
