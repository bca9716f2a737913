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
    struct bt_msg msg = {.type = BT_MSG_SIGNAL,
                         .name = (char *)(uintptr_t)BT_SIGNAL_UNBLOCK};
    char status[64], suffix[300], *bytes;
    size_t len;
    int ret;

    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: baton unblock ID\n");
        return BT_EXIT_USAGE;
    }
    if ((ret =
             bt_cli_lookup(cfg, argv[1], status, sizeof(status), suffix, sizeof(suffix))))
        return ret;
    if (strcmp(status, "blocked")) {
        fprintf(stderr, "baton: %s is %s, not blocked\n", argv[1], status);
        return BT_EXIT_FAIL;
    }
    msg.id = argv[1];
    bytes = bt_codec_encode(&msg, &len);
    ret = bytes ? bt_cli_produce(cfg, suffix, argv[1], bytes, len) : BT_EXIT_FAIL;
    free(bytes);
    if (ret == BT_EXIT_OK)
        fprintf(stderr, "asked %s to replay; `baton describe %s` shows the outcome\n",
                argv[1], argv[1]);
    return ret;
}
