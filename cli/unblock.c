/* `baton unblock ID`: asks the worker to replay a blocked instance now, after
 * compatible code was deployed (it would also resume on its next event, but
 * one blocked because its code crashed workers: only this resumes it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "codec.h"
#include "redis.h"
#include "replay.h"
#include "store.h"

static const struct bt_cmd unblock_cmd = {
    .name = "baton unblock",
    .synopsis = "ID",
    .about = "Replay a blocked instance now, after a compatible deploy (it would also "
             "resume on its next event).",
    .settings = (const char *const[]){BT_CLI_REDIS_SETTINGS, BT_CLI_KAFKA_SETTINGS, NULL},
    .min_pos = 1,
    .max_pos = 1,
};

static int forget_crashes(const struct bt_config *cfg, const char *id)
{
    struct bt_store *store = bt_cli_store(cfg);
    redisReply *reply;
    char key[600];
    int ret;

    if (!store)
        return BT_EXIT_UNAVAILABLE;
    reply = bt_redis_command(bt_store_redis(store), "DEL %s",
                             bt_store_key(store, id, ":crashes", key, sizeof(key)));
    ret = reply && reply->type == REDIS_REPLY_INTEGER ? BT_EXIT_OK : BT_EXIT_UNAVAILABLE;
    freeReplyObject(reply);
    bt_store_destroy(store);
    return ret;
}

int bt_cli_unblock(struct bt_config *cfg, int argc, char **argv)
{
    struct bt_msg msg = {.type = BT_MSG_SIGNAL,
                         .name = (char *)(uintptr_t)BT_SIGNAL_UNBLOCK};
    char status[64], suffix[300], *bytes, *pos[1];
    size_t len;
    char *id;
    int n_pos, ret;

    if ((ret = bt_cli_args(&unblock_cmd, argc, argv, pos, &n_pos)) >= 0)
        return ret;
    id = pos[0];
    if ((ret = bt_cli_lookup(cfg, id, status, sizeof(status), suffix, sizeof(suffix))))
        return ret;
    if (strcmp(status, "blocked")) {
        fprintf(stderr, "baton: %s is %s, not blocked\n", id, status);
        return BT_EXIT_FAIL;
    }
    /* an instance blocked because its code crashed workers runs again only
     * with their count cleared (workers/crashes.h) */
    if ((ret = forget_crashes(cfg, id)))
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
