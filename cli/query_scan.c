/* The scan of a query over the instance index (query.h): newest first over
 * every shard. Each shard's index (store.h) is a lane read in chunks; the
 * lanes are merged by score (when the instance entered the index: its
 * creation in idx:all, its change of status in idx:<status>), ties
 * going to the lower shard, so that a position is one triple: the score
 * reached, the shard, and how many members of that score the shard has
 * passed. Shards below it have passed all of that score, those above none. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "query.h"
#include "redis.h"

/* Members per lane read: 500 over all lanes, at least 64 per lane. */
#define CHUNK     500
#define CHUNK_MIN 64
#define BATCH     256 /* members whose meta one round trip reads */

/* Where one shard's scan stands: the score it reached ("(<s>" below s) and
 * how many members with that score it has passed (members of one score
 * come in one order). */
struct position {
    char score[48]; /* a score of at most 39 characters, "(" before it */
    long same;
};

struct lane {
    struct position at;
    redisReply *chunk; /* WITHSCORES: member, score, ... */
    size_t i, m;       /* next unpicked, members in chunk */
    bool done;         /* no member left past chunk */
};

/* A member picked, and where its lane stands once it is passed. */
struct pick {
    int lane;
    const char *id;
    struct position after;
};

struct scan {
    struct bt_store *store;
    const struct bt_query *q;
    struct lane *lanes;
    int n, chunk; /* lanes, members per lane read */
    struct pick batch[BATCH];
    size_t picked;
};

/* Reads the next chunk of every lane that has none left to pick, in one
 * round trip. 0 or BT_EXIT_UNAVAILABLE. */
static int refill(struct scan *sc)
{
    struct bt_redis *r = bt_store_redis(sc->store);
    char key[600], same[32], kp[BT_STORE_KP_SIZE], limit[16];
    int ret = 0, sent = 0;

    snprintf(limit, sizeof(limit), "%d", sc->chunk);
    for (int k = 0; k < sc->n; k++) {
        struct lane *l = &sc->lanes[k];
        if (l->done || l->i < l->m)
            continue;
        snprintf(key, sizeof(key), "%s:idx:%s",
                 bt_store_shard_kp(sc->store, k, kp, sizeof(kp)),
                 sc->q->status ? sc->q->status : "all");
        snprintf(same, sizeof(same), "%ld", l->at.same);
        const char *argv[] = {"ZREVRANGEBYSCORE", key,     l->at.score, "-inf",
                              "WITHSCORES",       "LIMIT", same,        limit};
        if (bt_redis_append_argv(r, 8, argv, NULL))
            return BT_EXIT_UNAVAILABLE;
        sent++;
    }
    for (int k = 0; k < sc->n && sent > 0; k++) {
        struct lane *l = &sc->lanes[k];
        redisReply *chunk = NULL;
        if (l->done || l->i < l->m)
            continue;
        sent--;
        freeReplyObject(l->chunk);
        l->chunk = NULL;
        l->i = l->m = 0;
        if (bt_redis_reply(r, &chunk) || chunk->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(chunk);
            ret = BT_EXIT_UNAVAILABLE; /* the replies left are read (and dropped) */
            continue;
        }
        l->chunk = chunk;
        l->m = chunk->elements / 2;
        l->done = l->m < (size_t)sc->chunk;
    }
    return ret;
}

/* The lane whose next member comes first (the highest score, ties to the
 * lower shard); -1 when every lane is empty. */
static int first_lane(const struct scan *sc)
{
    int best = -1;
    double top = -INFINITY;

    for (int k = 0; k < sc->n; k++) {
        const struct lane *l = &sc->lanes[k];
        if (l->i >= l->m)
            continue;
        double s = strtod(l->chunk->element[2 * l->i + 1]->str, NULL);
        if (best < 0 || s > top) {
            best = k;
            top = s;
        }
    }
    return best;
}

/* Picks members in order into the batch until it is full or a lane with
 * more to read ran out (it must be read before the order can go on).
 * Returns false when nothing is left at all. */
static bool pick(struct scan *sc)
{
    sc->picked = 0;
    while (sc->picked < BATCH) {
        int k = first_lane(sc);
        if (k < 0)
            return sc->picked > 0;
        struct lane *l = &sc->lanes[k];
        const char *score = l->chunk->element[2 * l->i + 1]->str;
        if (!strcmp(score, l->at.score)) {
            l->at.same++;
        } else {
            snprintf(l->at.score, sizeof(l->at.score), "%s", score);
            l->at.same = 1;
        }
        sc->batch[sc->picked++] =
            (struct pick){k, l->chunk->element[2 * l->i]->str, l->at};
        if (++l->i == l->m && !l->done)
            break;
    }
    return true;
}

/* Reads the meta of the batch (one pipelined round trip) and calls fn on
 * the matches in order; *stop at the one fn stopped at. 0 or
 * BT_EXIT_UNAVAILABLE. */
static int visit(struct scan *sc, bool (*fn)(const struct bt_query_row *, void *),
                 void *arg, size_t *stop)
{
    struct bt_redis *r = bt_store_redis(sc->store);
    char key[600];
    int ret = 0;

    for (size_t i = 0; i < sc->picked; i++) {
        const char *argv[] = {
            "HMGET",   bt_store_key(sc->store, sc->batch[i].id, "", key, sizeof(key)),
            "type",    "status",
            "created", "queue",
            "attrs",   "updated"};
        if (bt_redis_append_argv(r, 8, argv, NULL))
            return BT_EXIT_UNAVAILABLE;
    }
    for (size_t i = 0; i < sc->picked; i++) {
        redisReply *h = NULL;
        if (bt_redis_reply(r, &h) || !h || h->type != REDIS_REPLY_ARRAY ||
            h->elements != 6) {
            ret = BT_EXIT_UNAVAILABLE; /* the replies left are read (and dropped) */
        } else if (!ret && *stop == SIZE_MAX && h->element[0]->str) {
            /* a member without meta was deleted meanwhile: passed over */
            json_t *attrs =
                h->element[4]->str ? json_loads(h->element[4]->str, 0, NULL) : NULL;
            struct bt_query_row row = {
                .id = sc->batch[i].id,
                .type = h->element[0]->str,
                .status = h->element[1]->str ? h->element[1]->str : "",
                .created = h->element[2]->str ? strtoll(h->element[2]->str, NULL, 10) : 0,
                .queue = h->element[3]->str ? h->element[3]->str : "default",
                .attrs = attrs,
                .updated =
                    h->element[5]->str ? strtoll(h->element[5]->str, NULL, 10) : 0};
            if (bt_query_matches(sc->q, &row) && !fn(&row, arg))
                *stop = i;
            json_decref(attrs);
        }
        freeReplyObject(h);
    }
    return ret;
}

/* Sets the lanes where cursor says (a previous call's *next). */
static void start_at(struct scan *sc, const char *cursor)
{
    struct position at = {"+inf", 0};
    int shard = 0;

    if (cursor && *cursor &&
        sscanf(cursor, "%39[^:]:%ld:%d", at.score, &at.same, &shard) < 2)
        at = (struct position){"+inf", 0};
    if (shard < 0 || shard >= sc->n)
        shard = 0;
    for (int k = 0; k < sc->n; k++) {
        struct position *p = &sc->lanes[k].at;
        if (k < shard && strcmp(at.score, "+inf"))
            snprintf(p->score, sizeof(p->score), "(%.39s", at.score);
        else
            snprintf(p->score, sizeof(p->score), "%s", at.score);
        p->same = k == shard ? at.same : 0;
    }
}

bool bt_query_cursor_valid(const char *c)
{
    char score[40], *end;
    long same;
    int shard = 0;

    if (sscanf(c, "%39[^:]:%ld:%d", score, &same, &shard) < 2 || same < 0 || shard < 0)
        return false;
    double v = strtod(score, &end);
    return end != score && !*end && !isnan(v); /* Redis refuses NaN */
}

int bt_query_run(struct bt_store *store, const struct bt_query *q, const char *cursor,
                 bool (*fn)(const struct bt_query_row *row, void *arg), void *arg,
                 char *next, size_t n)
{
    struct scan *sc = calloc(1, sizeof(*sc));
    size_t stop = SIZE_MAX;
    int ret = BT_EXIT_UNAVAILABLE;

    next[0] = '\0';
    if (!sc || !(sc->lanes = calloc((size_t)bt_store_shards(store), sizeof(struct lane))))
        goto out;
    *sc = (struct scan){.store = store,
                        .q = q,
                        .lanes = sc->lanes,
                        .n = bt_store_shards(store),
                        .chunk = CHUNK / bt_store_shards(store)};
    if (sc->chunk < CHUNK_MIN)
        sc->chunk = CHUNK_MIN;
    start_at(sc, cursor);
    while (!(ret = refill(sc)) && pick(sc) && !(ret = visit(sc, fn, arg, &stop)) &&
           stop == SIZE_MAX)
        ;
    if (!ret && stop != SIZE_MAX) {
        const struct pick *p = &sc->batch[stop];
        if (bt_store_sharded(store))
            snprintf(next, n, "%s:%ld:%d", p->after.score, p->after.same, p->lane);
        else
            snprintf(next, n, "%s:%ld", p->after.score, p->after.same);
    }
out:
    for (int k = 0; sc && sc->lanes && k < sc->n; k++)
        freeReplyObject(sc->lanes[k].chunk);
    if (sc)
        free(sc->lanes);
    free(sc);
    return ret;
}
