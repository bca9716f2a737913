/* Token buckets in Redis shared by every worker process and thread: the
 * activity role takes a token before it runs a step with a rate key, and holds
 * back a key's bucket when its downstream reports "throttled". */
#include <stdio.h>

#include "err.h"
#include "log.h"
#include "lua_scripts.h"
#include "ratelimit.h"

char *bt_ratelimit_key(const char *prefix, const char *key, char *buf, size_t n)
{
    snprintf(buf, n, "%s:rl:%s", prefix, key);
    return buf;
}

int bt_ratelimit_append_take(struct bt_redis *r, const char *prefix, const char *key,
                             double rate, int burst)
{
    char bucket[600], rate_s[64], burst_s[32];
    const char *argv[] = {bucket, rate_s, burst_s};

    bt_ratelimit_key(prefix, key, bucket, sizeof(bucket));
    snprintf(rate_s, sizeof(rate_s), "%.17g", rate > 0 ? rate : 0);
    snprintf(burst_s, sizeof(burst_s), "%d", burst > 0 ? burst : 1);
    return bt_redis_append_eval(r, bt_lua_rate_take, 1, 3, argv, NULL);
}

int64_t bt_ratelimit_wait(const redisReply *reply, int64_t *tokens)
{
    *tokens = -1;
    if (!reply)
        return 200; /* Redis unreachable: ask again soon, do not run unlimited */
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_INTEGER &&
        reply->element[1]->type == REDIS_REPLY_INTEGER) {
        *tokens = reply->element[1]->integer;
        return reply->element[0]->integer > 0 ? reply->element[0]->integer : 0;
    }
    bt_log(BT_LOG_WARN, "rate limit take refused, running unlimited: %s",
           reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
    return 0;
}

int bt_ratelimit_throttle(struct bt_redis *r, const char *prefix, const char *key,
                          int64_t ms)
{
    char bucket[600], ms_s[32];
    const char *argv[] = {bucket, ms_s};
    redisReply *reply;
    int ret = BT_EAGAIN;

    bt_ratelimit_key(prefix, key, bucket, sizeof(bucket));
    snprintf(ms_s, sizeof(ms_s), "%lld", (long long)ms);
    reply = bt_redis_eval(r, bt_lua_rate_throttle, 1, 2, argv, NULL);
    if (reply && reply->type == REDIS_REPLY_INTEGER)
        ret = 0;
    freeReplyObject(reply);
    return ret;
}

static char *waiting_key(const char *prefix, const char *key, char *buf, size_t n)
{
    snprintf(buf, n, "%s:rlw:%s", prefix, key);
    return buf;
}

int64_t bt_ratelimit_share_waiting(struct bt_redis *r, const char *prefix,
                                   const char *key, const char *worker, int64_t n)
{
    char hash[600], n_s[32], ttl_s[16];
    const char *argv[] = {hash, worker, n_s, ttl_s};
    redisReply *reply;
    int64_t sum = BT_EAGAIN;

    waiting_key(prefix, key, hash, sizeof(hash));
    snprintf(n_s, sizeof(n_s), "%lld", (long long)(n > 0 ? n : 0));
    snprintf(ttl_s, sizeof(ttl_s), "%d", BT_RATELIMIT_WAITING_TTL_MS);
    reply = bt_redis_eval(r, bt_lua_rate_waiting, 1, 4, argv, NULL);
    if (reply && reply->type == REDIS_REPLY_INTEGER)
        sum = reply->integer;
    else if (reply)
        bt_log(BT_LOG_WARN, "cannot share a rate key's waiters: key=%s error=\"%s\"", key,
               reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
    freeReplyObject(reply);
    return sum;
}

/* Read only, so that a look does not write: the fields as rate_waiting.lua
 * keeps them, those past their expiry (a dead worker's) left out. */
int64_t bt_ratelimit_waiters(struct bt_redis *r, const char *prefix, const char *key)
{
    char hash[600];
    redisReply *all =
        bt_redis_command(r, "HGETALL %s", waiting_key(prefix, key, hash, sizeof(hash)));
    int64_t now = bt_redis_now_ms(r), sum = BT_EAGAIN;

    if (all && all->type == REDIS_REPLY_ARRAY && now >= 0) {
        sum = 0;
        for (size_t i = 1; i < all->elements; i += 2) {
            long long n, expiry;
            if (all->element[i]->type == REDIS_REPLY_STRING &&
                sscanf(all->element[i]->str, "%lld:%lld", &n, &expiry) == 2 &&
                expiry > now && n > 0)
                sum += n;
        }
    }
    freeReplyObject(all);
    return sum;
}
