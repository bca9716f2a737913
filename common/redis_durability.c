/* Whether Redis keeps what it acknowledged; see redis_durability.h. */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "redis_durability.h"

/* The value of field in an INFO reply ("name:value\r\n" lines), in buf. */
static const char *info_field(const char *info, const char *field, char *buf, size_t n)
{
    size_t len = strlen(field);
    const char *p = info;

    buf[0] = '\0';
    while (p && *p) {
        if (!strncmp(p, field, len) && p[len] == ':') {
            size_t i = 0;
            p += len + 1;
            while (p[i] && p[i] != '\r' && p[i] != '\n' && i + 1 < n) {
                buf[i] = p[i];
                i++;
            }
            buf[i] = '\0';
            return buf;
        }
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    return buf;
}

static void check_one(const char *info, int master, int masters)
{
    char policy[64], aof[8], node[48] = "";

    if (masters > 1)
        snprintf(node, sizeof(node), " master=%d/%d", master + 1, masters);
    info_field(info, "maxmemory_policy", policy, sizeof(policy));
    if (policy[0] && strcmp(policy, "noeviction"))
        bt_log(BT_LOG_ERROR,
               "redis may evict baton's keys when full, losing instances (set "
               "maxmemory-policy noeviction): maxmemory_policy=%s%s",
               policy, node);
    info_field(info, "aof_enabled", aof, sizeof(aof));
    if (!strcmp(aof, "0"))
        bt_log(BT_LOG_ERROR,
               "redis keeps no append-only file, a restart loses the last decisions (set "
               "appendonly yes): aof_enabled=0%s",
               node);
}

int bt_redis_durability_check(struct bt_redis *r)
{
    int masters = bt_redis_masters(r);

    if (masters <= 0)
        return 0;
    for (int m = 0; m < masters; m++) {
        /* the default sections: Redis 6 takes one section name at most */
        redisReply *reply = bt_redis_master_argv(r, m, 1, (const char *[]){"INFO"}, NULL);
        if (!reply)
            return 0;
        if (reply->type == REDIS_REPLY_STRING)
            check_one(reply->str, m, masters);
        freeReplyObject(reply);
    }
    return 1;
}
