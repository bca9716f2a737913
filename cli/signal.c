/* Events a user sends to a running instance: `baton signal ID NAME
 * [--payload JSON]`, `baton cancel ID [--reason TEXT]` (the workflow sees it
 * and may run cleanup steps) and `baton terminate ID` (stops at once). The
 * instance is looked up first, so a typo or a finished instance gets a clear
 * error here instead of a dead letter. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "codec.h"
#include "journal.h"

/* Sends msg to its instance's events topic, once it is known to be alive. */
static int send_event(const struct bt_config *cfg, const struct bt_msg *msg)
{
    char status[64], suffix[300];
    size_t len;
    char *bytes;
    int ret = bt_cli_lookup(cfg, msg->id, status, sizeof(status), suffix, sizeof(suffix));

    if (ret)
        return ret;
    if (bt_status_final(bt_status_parse(status))) {
        fprintf(stderr, "baton: workflow %s is already %s\n", msg->id, status);
        return BT_EXIT_FAIL;
    }
    if (!(bytes = bt_codec_encode(msg, &len))) {
        fprintf(stderr, "baton: invalid id or name (1..256 characters, no control "
                        "characters)\n");
        return BT_EXIT_USAGE;
    }
    ret = bt_cli_produce(cfg, suffix, msg->id, bytes, len);
    free(bytes);
    return ret;
}

int bt_cli_signal(struct bt_config *cfg, int argc, char **argv)
{
    struct bt_msg msg = {.type = BT_MSG_SIGNAL};
    json_error_t jerr;
    int ret = BT_EXIT_USAGE;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--payload") && i + 1 < argc) {
            json_decref(msg.body);
            if (!(msg.body = json_loads(argv[++i], JSON_DECODE_ANY, &jerr))) {
                fprintf(stderr, "baton signal: --payload: %s (column %d)\n", jerr.text,
                        jerr.column);
                goto out;
            }
        } else if (argv[i][0] != '-' && !msg.id) {
            msg.id = argv[i];
        } else if (argv[i][0] != '-' && !msg.name) {
            msg.name = argv[i];
        } else {
            msg.id = NULL;
            break;
        }
    }
    if (!msg.id || !msg.name || msg.name[0] == '$') {
        fprintf(stderr, "usage: baton signal ID NAME [--payload JSON]  (names starting "
                        "with $ are baton's)\n");
        goto out;
    }
    if ((ret = send_event(cfg, &msg)) == BT_EXIT_OK)
        fprintf(stderr, "signal %s sent to %s\n", msg.name, msg.id);
out:
    json_decref(msg.body);
    return ret;
}

static int stop(struct bt_config *cfg, int argc, char **argv, bool terminate)
{
    struct bt_msg msg = {.type = BT_MSG_CANCEL, .terminate = terminate};
    int ret;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reason") && i + 1 < argc) {
            json_decref(msg.body);
            msg.body = json_string(argv[++i]);
        } else if (argv[i][0] != '-' && !msg.id) {
            msg.id = argv[i];
        } else {
            msg.id = NULL;
            break;
        }
    }
    if (!msg.id) {
        fprintf(stderr, "usage: baton %s ID [--reason TEXT]\n", argv[0]);
        json_decref(msg.body);
        return BT_EXIT_USAGE;
    }
    if ((ret = send_event(cfg, &msg)) == BT_EXIT_OK)
        fprintf(stderr, "%s requested for %s\n",
                terminate ? "termination" : "cancellation", msg.id);
    json_decref(msg.body);
    return ret;
}

int bt_cli_cancel(struct bt_config *cfg, int argc, char **argv)
{
    return stop(cfg, argc, argv, false);
}

int bt_cli_terminate(struct bt_config *cfg, int argc, char **argv)
{
    return stop(cfg, argc, argv, true);
}
