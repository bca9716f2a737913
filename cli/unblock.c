/* `baton unblock ID`: asks the worker to replay a blocked instance now, after
 * compatible code was deployed (it would also resume on its next event). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "codec.h"
#include "replay.h"

int bt_cli_unblock(struct bt_config *cfg, int argc, char **argv)
{
    struct bt_store *store;
    struct bt_msg msg = {.type = BT_MSG_SIGNAL,
                         .name = (char *)(uintptr_t)BT_SIGNAL_UNBLOCK};
    redisReply *reply;
    char key[600], *bytes;
    size_t len;
    int ret;

    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: baton unblock ID\n");
        return BT_EXIT_USAGE;
    }
    if (!(store = bt_cli_store(cfg)))
        return BT_EXIT_UNAVAILABLE;
    reply = bt_redis_command(bt_store_redis(store), "HGET %s status",
                             bt_store_key(store, argv[1], "", key, sizeof(key)));
    if (!reply || reply->type != REDIS_REPLY_STRING) {
        fprintf(stderr, "baton: no workflow instance \"%s\"\n", argv[1]);
        ret = reply ? BT_EXIT_FAIL : BT_EXIT_UNAVAILABLE;
        goto out;
    }
    if (strcmp(reply->str, "blocked")) {
        fprintf(stderr, "baton: %s is %s, not blocked\n", argv[1], reply->str);
        ret = BT_EXIT_FAIL;
        goto out;
    }
    msg.id = argv[1];
    bytes = bt_codec_encode(&msg, &len);
    ret = bytes ? bt_cli_produce(cfg, "events", argv[1], bytes, len) : BT_EXIT_FAIL;
    free(bytes);
    if (ret == BT_EXIT_OK)
        fprintf(stderr, "asked %s to replay; `baton describe %s` shows the outcome\n",
                argv[1], argv[1]);
out:
    freeReplyObject(reply);
    bt_store_destroy(store);
    return ret;
}
