/* Leases on concurrency-limit keys in Redis: the activity role acquires one
 * before it runs a step with a concurrency key, renews it while the step runs
 * and releases it when the step ends (contract in concurrency.h). */
#include <stdio.h>

#include "concurrency.h"
#include "log.h"
#include "lua_scripts.h"

char *bt_concurrency_key(const char *prefix, const char *key, char *buf, size_t n)
{
    snprintf(buf, n, "%s:cc:%s", prefix, key);
    return buf;
}

char *bt_concurrency_holders_key(const char *prefix, const char *key, char *buf, size_t n)
{
    snprintf(buf, n, "{%s:cc:%s}:holders", prefix, key);
    return buf;
}

int bt_concurrency_append_acquire(struct bt_redis *r, const char *prefix, const char *key,
                                  int default_limit, const char *holder, int64_t lease_ms)
{
    char hash[600], holders[600], limit_s[32], lease_s[32];
    const char *argv[] = {hash, holders, limit_s, holder, lease_s};

    bt_concurrency_key(prefix, key, hash, sizeof(hash));
    bt_concurrency_holders_key(prefix, key, holders, sizeof(holders));
    snprintf(limit_s, sizeof(limit_s), "%d", default_limit > 0 ? default_limit : 0);
    snprintf(lease_s, sizeof(lease_s), "%lld", (long long)lease_ms);
    return bt_redis_append_eval(r, bt_lua_cc_acquire, 2, 5, argv, NULL);
}

int64_t bt_concurrency_wait(const redisReply *reply)
{
    if (!reply)
        return 200; /* Redis unreachable: ask again soon, do not run unlimited */
    if (reply->type == REDIS_REPLY_INTEGER)
        return reply->integer < 0 ? -1 : reply->integer;
    bt_log(BT_LOG_WARN, "concurrency acquire refused, running unlimited: %s",
           reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
    return -1;
}

int bt_concurrency_append_renew(struct bt_redis *r, const char *prefix, const char *key,
                                const char *holder, int64_t lease_ms)
{
    char holders[600], lease_s[32];
    const char *argv[] = {holders, holder, lease_s};

    bt_concurrency_holders_key(prefix, key, holders, sizeof(holders));
    snprintf(lease_s, sizeof(lease_s), "%lld", (long long)lease_ms);
    return bt_redis_append_eval(r, bt_lua_cc_renew, 1, 3, argv, NULL);
}

int bt_concurrency_append_release(struct bt_redis *r, const char *prefix, const char *key,
                                  const char *holder)
{
    char holders[600];
    const char *argv[] = {"ZREM", holders, holder};

    bt_concurrency_holders_key(prefix, key, holders, sizeof(holders));
    return bt_redis_append_argv(r, 3, argv, NULL);
}
