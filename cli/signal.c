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
#include "instance.h"

int bt_cli_send_event(const struct bt_config *cfg, const struct bt_msg *msg)
{
    char status[64], suffix[300];
    int ret = bt_cli_lookup(cfg, msg->id, status, sizeof(status), suffix, sizeof(suffix));

    if (ret)
        return ret;
    if (bt_status_final(bt_status_parse(status))) {
        fprintf(stderr, "baton: workflow %s is already %s\n", msg->id, status);
        return BT_EXIT_FAIL;
    }
    return bt_cli_send(cfg, suffix, msg);
}

static const char *payload_arg, *reason_arg, *query_arg;
static bool yes_arg;

#define ARG_QUERY BT_CLI_ARG_QUERY(query_arg)
#define ARG_YES   BT_CLI_ARG_YES(yes_arg)

static const struct bt_arg signal_args[] = {
    {"payload", 0, BT_ARG_STR, &payload_arg, "JSON", "null",
     .help = "what the workflow receives with the signal"},
    ARG_QUERY,
    ARG_YES,
    {NULL},
};

static const struct bt_cmd signal_cmd = {
    .name = "baton signal",
    .synopsis = "ID NAME [--payload JSON] | NAME --query QUERY [--yes] [--payload JSON]",
    .about = "Send the signal NAME to a running instance, or to every one a query "
             "matches (names starting with $ are baton's).",
    .args = signal_args,
    .settings = (const char *const[]){BT_CLI_REDIS_SETTINGS, BT_CLI_KAFKA_SETTINGS, NULL},
    .min_pos = 1,
    .max_pos = 2,
};

int bt_cli_signal(struct bt_config *cfg, int argc, char **argv)
{
    struct bt_msg msg = {.type = BT_MSG_SIGNAL};
    json_error_t jerr;
    char *pos[2];
    int n_pos, ret;

    if ((ret = bt_cli_args(&signal_cmd, argc, argv, pos, &n_pos)) >= 0)
        return ret;
    ret = BT_EXIT_USAGE;
    if (!bt_cli_one_target("signal", n_pos, 2, query_arg))
        return ret;
    msg.id = query_arg ? NULL : pos[0];
    msg.name = pos[n_pos - 1];
    msg.by = (char *)(uintptr_t)bt_cli_who();
    if (msg.name[0] == '$') {
        fprintf(stderr, "baton signal: names starting with $ are baton's\n");
        goto out;
    }
    if (payload_arg && !(msg.body = json_loads(payload_arg, JSON_DECODE_ANY, &jerr))) {
        fprintf(stderr, "baton signal: --payload: %s (column %d)\n", jerr.text,
                jerr.column);
        goto out;
    }
    if (query_arg)
        ret = bt_cli_batch(cfg, query_arg, yes_arg, &msg, "signal");
    else if ((ret = bt_cli_send_event(cfg, &msg)) == BT_EXIT_OK)
        fprintf(stderr, "signal %s sent to %s\n", msg.name, msg.id);
out:
    json_decref(msg.body);
    return ret;
}

static const struct bt_arg stop_args[] = {
    {"reason", 0, BT_ARG_STR, &reason_arg, "TEXT", .help = "why, kept in its history"},
    ARG_QUERY,
    ARG_YES,
    {NULL},
};

static const struct bt_cmd cancel_cmd = {
    .name = "baton cancel",
    .synopsis = "ID [--reason TEXT] | --query QUERY [--yes] [--reason TEXT]",
    .about = "Ask an instance to cancel: the steps it waits on fail with \"Cancelled\", "
             "so its code may clean up; failing with \"Cancelled\" ends it as cancelled.",
    .args = stop_args,
    .settings = (const char *const[]){BT_CLI_REDIS_SETTINGS, BT_CLI_KAFKA_SETTINGS, NULL},
    .min_pos = 0,
    .max_pos = 1,
};

static const struct bt_cmd terminate_cmd = {
    .name = "baton terminate",
    .synopsis = "ID [--reason TEXT] | --query QUERY [--yes] [--reason TEXT]",
    .about = "Stop an instance (or every one a query matches) at once: no code of it "
             "runs again.",
    .args = stop_args,
    .settings = (const char *const[]){BT_CLI_REDIS_SETTINGS, BT_CLI_KAFKA_SETTINGS, NULL},
    .min_pos = 0,
    .max_pos = 1,
};

static int stop(struct bt_config *cfg, int argc, char **argv, bool terminate)
{
    struct bt_msg msg = {.type = BT_MSG_CANCEL, .terminate = terminate};
    char *pos[1];
    int n_pos, ret;

    if ((ret = bt_cli_args(terminate ? &terminate_cmd : &cancel_cmd, argc, argv, pos,
                           &n_pos)) >= 0)
        return ret;
    if (!bt_cli_one_target(terminate ? "terminate" : "cancel", n_pos, 1, query_arg))
        return BT_EXIT_USAGE;
    msg.id = query_arg ? NULL : pos[0];
    msg.by = (char *)(uintptr_t)bt_cli_who();
    msg.body = reason_arg ? json_string(reason_arg) : NULL;
    if (query_arg)
        ret = bt_cli_batch(cfg, query_arg, yes_arg, &msg,
                           terminate ? "terminate" : "cancel");
    else if ((ret = bt_cli_send_event(cfg, &msg)) == BT_EXIT_OK)
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
