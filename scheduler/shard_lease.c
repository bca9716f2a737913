/* Leases in shard 0's prefix: <kp>:{0}:schedulers (who is alive, till when)
 * and <kp>:{0}:shard-owners (shard -> scheduler), one Redis Cluster slot. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "err.h"
#include "log.h"
#include "lua_scripts.h"
#include "redis.h"
#include "shard_lease.h"

struct bt_shard_lease {
    struct bt_store *store;
    struct bt_series *gauge;
    char name[320];
    char members[300], owners[300];
    int shards, held_n, live; /* held_n: of held[] */
    bool *held;               /* per shard */
    int64_t next_ms;
};

struct bt_shard_lease *bt_shard_lease_new(struct bt_store *store, struct bt_series *held)
{
    struct bt_shard_lease *l = calloc(1, sizeof(*l));
    const char *kp = bt_store_schedule_prefix(store);
    char host[256] = "";

    if (!l || !(l->held = calloc((size_t)bt_store_shards(store), sizeof(bool)))) {
        free(l);
        return NULL;
    }
    l->store = store;
    l->gauge = held;
    l->shards = bt_store_shards(store);
    gethostname(host, sizeof(host) - 1);
    snprintf(l->name, sizeof(l->name), "%s:%d", host, (int)getpid());
    snprintf(l->members, sizeof(l->members), "%s:schedulers", kp);
    snprintf(l->owners, sizeof(l->owners), "%s:shard-owners", kp);
    if (!bt_store_sharded(store)) {
        l->held[0] = true;
        l->held_n = 1;
        l->next_ms = INT64_MAX;
    }
    return l;
}

/* One call of shard_leases.lua; leaving: give everything back. */
static redisReply *call(struct bt_shard_lease *l, bool leaving)
{
    char ttl[16], shards[16];
    const char *argv[] = {l->members, l->owners, l->name,
                          ttl,        shards,    leaving ? "1" : "0"};

    snprintf(ttl, sizeof(ttl), "%d", BT_SHARD_LEASE_TTL_MS);
    snprintf(shards, sizeof(shards), "%d", l->shards);
    return bt_redis_eval(bt_store_redis(l->store), bt_lua_shard_leases, 2, 6, argv, NULL);
}

int bt_shard_lease_renew(struct bt_shard_lease *l)
{
    redisReply *reply;
    int n = 0;

    if (bt_clock_mono_ms() < l->next_ms)
        return 0;
    reply = call(l, false);
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 1) {
        if (reply && reply->type == REDIS_REPLY_ERROR)
            bt_log(BT_LOG_WARN, "shard lease refused by redis: %s", reply->str);
        freeReplyObject(reply);
        /* tried again soon: a restarted Redis must not wait a whole period */
        l->next_ms = bt_clock_mono_ms() + BT_SHARD_LEASE_RENEW_MS / 4;
        return BT_EAGAIN;
    }
    memset(l->held, 0, (size_t)l->shards * sizeof(bool));
    for (size_t i = 0; i + 1 < reply->elements; i++) {
        long long shard = reply->element[i]->integer;
        if (shard >= 0 && shard < l->shards && !l->held[shard]) {
            l->held[shard] = true;
            n++;
        }
    }
    if (n != l->held_n || reply->element[reply->elements - 1]->integer != l->live) {
        l->live = (int)reply->element[reply->elements - 1]->integer;
        bt_log(BT_LOG_INFO, "shards held: count=%d of=%d schedulers=%d", n, l->shards,
               l->live);
    }
    l->held_n = n;
    bt_metrics_set(l->gauge, n);
    freeReplyObject(reply);
    l->next_ms = bt_clock_mono_ms() + BT_SHARD_LEASE_RENEW_MS;
    return 0;
}

bool bt_shard_lease_holds(const struct bt_shard_lease *l, int shard)
{
    return shard >= 0 && shard < l->shards && l->held[shard];
}

int64_t bt_shard_lease_next(const struct bt_shard_lease *l)
{
    return l->next_ms;
}

void bt_shard_lease_destroy(struct bt_shard_lease *l)
{
    if (!l)
        return;
    if (bt_store_sharded(l->store))
        freeReplyObject(call(l, true));
    free(l->held);
    free(l);
}
