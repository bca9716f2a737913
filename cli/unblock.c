/* `baton unblock ID | --query Q`: asks the worker to replay a blocked
 * instance now, after compatible code was deployed (it would also resume on
 * its next event, but one blocked because its code crashed workers: only
 * this resumes it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "codec.h"
#include "redis.h"
#include "replay.h"
#include "store.h"

static const char *query_arg;
static bool yes_arg;

static const struct bt_arg unblock_args[] = {
    BT_CLI_ARG_QUERY(query_arg),
    BT_CLI_ARG_YES(yes_arg),
    {NULL},
};

static const struct bt_cmd unblock_cmd = {
    .name = "baton unblock",
    .synopsis = "ID | --query QUERY [--yes]",
    .about = "Replay a blocked instance now, after a compatible deploy (it would also "
             "resume on its next event; one blocked because its code crashed workers "
             "resumes only so). With --query: every blocked instance that matches.",
    .args = unblock_args,
    .settings = (const char *const[]){BT_CLI_REDIS_SETTINGS, BT_CLI_KAFKA_SETTINGS, NULL},
    .max_pos = 1,
};

/* An instance blocked because its code, or its type's, crashed workers runs
 * again only with their records cleared (workers/crashes.h): its count, and
 * its type's (NULL: read from its meta), which the workers read again as
 * they see the unblock. */
static int forget_crashes(struct bt_store *store, const char *id, const char *type)
{
    struct bt_redis *r = bt_store_redis(store);
    char key[600], crashed[300];
    redisReply *meta = NULL, *reply;
    int ret;

    if (!type) {
        meta = bt_redis_command(r, "HGET %s type",
                                bt_store_key(store, id, "", key, sizeof(key)));
        if (!meta ||
            (meta->type != REDIS_REPLY_STRING && meta->type != REDIS_REPLY_NIL)) {
            freeReplyObject(meta);
            return BT_EXIT_UNAVAILABLE;
        }
        type = meta->str;
    }
    reply = bt_redis_command(r, "DEL %s",
                             bt_store_key(store, id, ":crashes", key, sizeof(key)));
    ret = reply && reply->type == REDIS_REPLY_INTEGER ? BT_EXIT_OK : BT_EXIT_UNAVAILABLE;
    freeReplyObject(reply);
    if (ret || !type)
        goto out;
    snprintf(crashed, sizeof(crashed), "%s:crashed", bt_store_prefix(store));
    reply = bt_redis_command(r, "HDEL %s %s", crashed, type);
    /* an older baton's record, a string, goes whole */
    if (reply && reply->type == REDIS_REPLY_ERROR &&
        !strncmp(reply->str, "WRONGTYPE", 9)) {
        freeReplyObject(reply);
        reply = bt_redis_command(r, "DEL %s", crashed);
    }
    ret = reply && reply->type == REDIS_REPLY_INTEGER ? BT_EXIT_OK : BT_EXIT_UNAVAILABLE;
    freeReplyObject(reply);
out:
    freeReplyObject(meta);
    return ret;
}

int bt_cli_unblock(struct bt_config *cfg, int argc, char **argv)
{
    struct bt_msg msg = {.type = BT_MSG_SIGNAL,
                         .name = (char *)(uintptr_t)BT_SIGNAL_UNBLOCK};
    char status[64], suffix[300], *bytes, *pos[1];
    struct bt_store *store;
    size_t len;
    char *id;
    int n_pos, ret;

    if ((ret = bt_cli_args(&unblock_cmd, argc, argv, pos, &n_pos)) >= 0)
        return ret;
    if (!bt_cli_one_target("unblock", n_pos, 1, query_arg))
        return BT_EXIT_USAGE;
    if (query_arg)
        return bt_cli_batch_of(cfg, query_arg, yes_arg, &msg, "unblock", "blocked",
                               forget_crashes);
    id = pos[0];
    if ((ret = bt_cli_lookup(cfg, id, status, sizeof(status), suffix, sizeof(suffix))))
        return ret;
    if (strcmp(status, "blocked")) {
        fprintf(stderr, "baton: %s is %s, not blocked\n", id, status);
        return BT_EXIT_FAIL;
    }
    if (!(store = bt_cli_store(cfg)))
        return BT_EXIT_UNAVAILABLE;
    ret = forget_crashes(store, id, NULL);
    bt_store_destroy(store);
    if (ret)
        return ret;
    msg.id = id;
    bytes = bt_codec_encode(&msg, &len);
    ret = bytes ? bt_cli_produce(cfg, suffix, id, bytes, len) : BT_EXIT_FAIL;
    free(bytes);
    if (ret == BT_EXIT_OK)
        fprintf(stderr, "asked %s to replay; `baton describe %s` shows the outcome\n", id,
                id);
    return ret;
}
