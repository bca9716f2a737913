/* The worker's heartbeat (alive.h). */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alive.h"
#include "clock.h"
#include "log.h"
#include "ratelimit.h"
#include "redis.h"
#include "redis_durability.h"
#include "store.h"

#define MAX_QUEUES 64

struct keys {
    char **v;
    size_t n, cap;
};

struct bt_alive {
    struct bt_redis *r;
    char key[600];
    char *queues[MAX_QUEUES]; /* their serving keys */
    size_t n_queues;
    char *types_keys[MAX_QUEUES]; /* <kp>:types:<queue>, one per queue */
    const char **types;           /* borrowed: the registry's workflow types */
    size_t n_types;
    struct bt_metric *rate_waiting; /* borrowed, may be NULL */
    char *prefix, *worker;
    struct keys shared; /* rate keys shared with waiters at the last beat */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop;
    bool durability_told; /* redis_durability.h: once, when Redis answers */
};

/* The workflow types this worker runs, in the sorted set of one of its
 * queues, each scored by when it expires; the set expires with the last
 * worker of the queue, and each beat drops the types whose workers died or
 * stopped serving them (by the clocks of the workers, never the CLI's). */
static void register_types(struct bt_alive *a, const char *key)
{
    const char **argv = malloc((2 + 2 * a->n_types) * sizeof(*argv));
    char expiry[24], now[24], ttl[16];
    int argc = 0;

    if (!argv)
        return;
    snprintf(now, sizeof(now), "%lld", (long long)bt_clock_now_ms());
    snprintf(expiry, sizeof(expiry), "%lld",
             (long long)bt_clock_now_ms() + BT_ALIVE_TTL_MS);
    snprintf(ttl, sizeof(ttl), "%d", BT_ALIVE_TTL_MS);
    argv[argc++] = "ZADD";
    argv[argc++] = key;
    for (size_t i = 0; i < a->n_types; i++) {
        argv[argc++] = expiry;
        argv[argc++] = a->types[i];
    }
    freeReplyObject(bt_redis_argv(a->r, argc, argv, NULL));
    freeReplyObject(bt_redis_argv(a->r, 3, (const char *[]){"PEXPIRE", key, ttl}, NULL));
    freeReplyObject(bt_redis_argv(
        a->r, 4, (const char *[]){"ZREMRANGEBYSCORE", key, "-inf", now}, NULL));
    free(argv);
}

static void keys_free(struct keys *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->v[i]);
    free(k->v);
    *k = (struct keys){0};
}

static bool keys_has(const struct keys *k, const char *key)
{
    for (size_t i = 0; i < k->n; i++)
        if (!strcmp(k->v[i], key))
            return true;
    return false;
}

struct sharing {
    struct bt_alive *a;
    struct keys now;
};

/* One rate key's waiters here: shared while there are some, and once more
 * as none when they are gone, so operators see them go at once. */
static void share_key(const char *key, int64_t waiting, void *arg)
{
    struct sharing *s = arg;
    char **v;

    if (waiting <= 0 && !keys_has(&s->a->shared, key))
        return;
    bt_ratelimit_share_waiting(s->a->r, s->a->prefix, key, s->a->worker, waiting);
    if (waiting <= 0)
        return;
    if (s->now.n == s->now.cap) {
        size_t cap = s->now.cap ? 2 * s->now.cap : 8;
        if (!(v = realloc(s->now.v, cap * sizeof(*v))))
            return;
        s->now.v = v;
        s->now.cap = cap;
    }
    if ((s->now.v[s->now.n] = strdup(key)))
        s->now.n++;
}

/* The alive key and the serving keys, with their expiry: one call each (a
 * pipeline cut by a Redis restart would leave replies owed, and a wait for
 * them that never ends would hold the worker's stop). */
static void beat(struct bt_alive *a)
{
    char ttl[16];

    snprintf(ttl, sizeof(ttl), "%d", BT_ALIVE_TTL_MS);
    freeReplyObject(
        bt_redis_argv(a->r, 5, (const char *[]){"SET", a->key, "1", "PX", ttl}, NULL));
    for (size_t i = 0; i < a->n_queues; i++)
        freeReplyObject(bt_redis_argv(
            a->r, 5, (const char *[]){"SET", a->queues[i], "1", "PX", ttl}, NULL));
    for (size_t i = 0; i < a->n_queues && a->n_types; i++)
        register_types(a, a->types_keys[i]);
    if (a->rate_waiting) {
        struct sharing s = {a, {0}};
        bt_metrics_each(a->rate_waiting, share_key, &s);
        keys_free(&a->shared);
        a->shared = s.now;
    }
}

static void *run(void *arg)
{
    struct bt_alive *a = arg;

    pthread_mutex_lock(&a->lock);
    while (!a->stop) {
        struct timespec until;
        pthread_mutex_unlock(&a->lock);
        beat(a);
        if (!a->durability_told)
            a->durability_told = bt_redis_durability_check(a->r);
        pthread_mutex_lock(&a->lock);
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += BT_ALIVE_EVERY_MS / 1000;
        while (!a->stop && pthread_cond_timedwait(&a->wake, &a->lock, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

struct bt_alive *bt_alive_start(const struct bt_config *cfg, const char *worker,
                                const char **types, size_t n_types,
                                struct bt_metric *rate_waiting, char *errstr,
                                size_t errstr_size)
{
    struct bt_alive *a = calloc(1, sizeof(*a));

    if (!a || !(a->prefix = strdup(cfg->key_prefix)) || !(a->worker = strdup(worker))) {
        if (a)
            free(a->prefix);
        free(a);
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    a->rate_waiting = rate_waiting;
    bt_alive_key(cfg->key_prefix, worker, a->key, sizeof(a->key));
    a->types = types;
    a->n_types = n_types;
    if (cfg->queues) {
        char *list = strdup(cfg->queues), *save = NULL;
        for (char *q = list ? strtok_r(list, ", ", &save) : NULL;
             q && a->n_queues < MAX_QUEUES; q = strtok_r(NULL, ", ", &save)) {
            char key[600];
            if (!(a->queues[a->n_queues] =
                      strdup(bt_serving_key(cfg->key_prefix, q, key, sizeof(key)))))
                break;
            if (!(a->types_keys[a->n_queues] =
                      strdup(bt_types_key(cfg->key_prefix, q, key, sizeof(key))))) {
                free(a->queues[a->n_queues]);
                break;
            }
            a->n_queues++;
        }
        free(list);
    }
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->wake, NULL);
    if (!(a->r = bt_store_redis_new(cfg, errstr, errstr_size)))
        goto fail;
    if (pthread_create(&a->thread, NULL, run, a)) {
        snprintf(errstr, errstr_size, "cannot start the heartbeat thread");
        goto fail;
    }
    return a;
fail:
    for (size_t i = 0; i < a->n_queues; i++) {
        free(a->queues[i]);
        free(a->types_keys[i]);
    }
    bt_redis_destroy(a->r);
    pthread_cond_destroy(&a->wake);
    pthread_mutex_destroy(&a->lock);
    free(a->prefix);
    free(a->worker);
    free(a);
    return NULL;
}

void bt_alive_stop(struct bt_alive *a)
{
    redisReply *reply;

    if (!a)
        return;
    pthread_mutex_lock(&a->lock);
    a->stop = true;
    pthread_cond_signal(&a->wake);
    pthread_mutex_unlock(&a->lock);
    pthread_join(a->thread, NULL);
    /* its eager tasks are done: nothing of it is left to recover */
    reply = bt_redis_argv(a->r, 2, (const char *[]){"DEL", a->key}, NULL);
    freeReplyObject(reply);
    for (size_t i = 0; i < a->shared.n; i++) /* it waits for nothing any more */
        bt_ratelimit_share_waiting(a->r, a->prefix, a->shared.v[i], a->worker, 0);
    keys_free(&a->shared);
    bt_redis_destroy(a->r);
    for (size_t i = 0; i < a->n_queues; i++) {
        free(a->queues[i]);
        free(a->types_keys[i]);
    }
    pthread_cond_destroy(&a->wake);
    pthread_mutex_destroy(&a->lock);
    free(a->prefix);
    free(a->worker);
    free(a);
}
