/* An operator's controls of instances: `baton pause`, `baton resume` and
 * `baton reset`, for one ID or every instance a query matches. Each is an
 * event on the instance's partition (common/sdk/control.c says what the worker
 * does with it), recorded in its history with who sent it. For one ID the
 * instance is looked at first, so a wrong status or reset point is said
 * here rather than found in the dead letters. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "codec.h"
#include "control.h"
#include "err.h"
#include "instance.h"

static const char *reason_arg, *query_arg;
static int64_t to_arg = -1;
static bool last_failure_arg, yes_arg;

#define ARG_REASON                                                                       \
    {                                                                                    \
        "reason", 0, BT_ARG_STR, &reason_arg, "TEXT", .help = "why, kept in its history" \
    }
#define ARG_QUERY BT_CLI_ARG_QUERY(query_arg)
#define ARG_YES   BT_CLI_ARG_YES(yes_arg)

static const struct bt_arg pause_args[] = {ARG_REASON, ARG_QUERY, ARG_YES, {NULL}};

static const struct bt_arg reset_args[] = {
    {"to", 0, BT_ARG_INT, &to_arg, "SEQ", .min = 0, .max = INT64_MAX,
     .help = "the step the new run does again (every step before it kept): a seq of "
             "`baton history`"},
    {"to-last-failure", 0, BT_ARG_BOOL, &last_failure_arg,
     .help = "the step that failed last, instead of --to"},
    ARG_REASON,
    ARG_QUERY,
    ARG_YES,
    {NULL},
};

#define SETTINGS                                                                         \
    (const char *const[])                                                                \
    {                                                                                    \
        BT_CLI_REDIS_SETTINGS, BT_CLI_KAFKA_SETTINGS, NULL                               \
    }

static const struct bt_cmd pause_cmd = {
    .name = "baton pause",
    .synopsis = "ID [--reason TEXT] | --query QUERY [--yes] [--reason TEXT]",
    .about = "Pause an instance: its code takes no step and its timers stop until "
             "`baton resume`; steps already running finish, signals are kept.",
    .args = pause_args,
    .settings = SETTINGS,
    .max_pos = 1,
};

static const struct bt_cmd resume_cmd = {
    .name = "baton resume",
    .synopsis = "ID [--reason TEXT] | --query QUERY [--yes] [--reason TEXT]",
    .about = "Resume a paused instance: each timer gets the rest of its time and the "
             "code runs on what arrived meanwhile.",
    .args = pause_args,
    .settings = SETTINGS,
    .max_pos = 1,
};

static const struct bt_cmd reset_cmd = {
    .name = "baton reset",
    .synopsis = "ID (--to SEQ | --to-last-failure) [--reason TEXT] | --query QUERY "
                "--to-last-failure [--yes]",
    .about = "Start a new run of an instance (finished or not) that keeps its journal "
             "before a step and does that step again; the old run is kept, archived, "
             "with a link to the new one.",
    .args = reset_args,
    .settings = SETTINGS,
    .max_pos = 1,
};

/* Whether the reset msg asks for fits the instance as Redis has it now. */
static int check_reset(const struct bt_config *cfg, const struct bt_msg *msg)
{
    struct bt_store *store = bt_cli_store(cfg);
    struct bt_instance *inst = bt_instance_new(msg->id);
    const char *why;
    int64_t seq;
    int ret = BT_EXIT_UNAVAILABLE;

    if (!store || !inst || bt_store_load(store, &inst, 1))
        goto out;
    ret = BT_EXIT_FAIL;
    if (bt_control_reset_seq(inst, msg, &seq, &why))
        fprintf(stderr, "baton: %s %s\n", why, msg->id);
    else
        ret = BT_EXIT_OK;
out:
    if (ret == BT_EXIT_UNAVAILABLE)
        fprintf(stderr, "baton: cannot read from Redis at %s\n", cfg->redis);
    bt_instance_destroy(inst);
    bt_store_destroy(store);
    return ret;
}

int bt_cli_control_send(const struct bt_config *cfg, const struct bt_msg *msg)
{
    char status[64], suffix[300];
    int ret = bt_cli_lookup(cfg, msg->id, status, sizeof(status), suffix, sizeof(suffix));
    enum bt_status s = (enum bt_status)bt_status_parse(status);

    if (ret)
        return ret;
    if (msg->type == BT_MSG_PAUSE && s != BT_STATUS_RUNNING && s != BT_STATUS_BLOCKED) {
        fprintf(stderr,
                "baton: workflow %s is %s: only a running or blocked one pauses\n",
                msg->id, status);
        return BT_EXIT_FAIL;
    }
    if (msg->type == BT_MSG_RESUME && s != BT_STATUS_PAUSED) {
        fprintf(stderr, "baton: workflow %s is %s, not paused\n", msg->id, status);
        return BT_EXIT_FAIL;
    }
    if (msg->type == BT_MSG_RESET && (ret = check_reset(cfg, msg)))
        return ret;
    return bt_cli_send(cfg, suffix, msg);
}

static int control(struct bt_config *cfg, int argc, char **argv, const struct bt_cmd *cmd,
                   struct bt_msg *msg, const char *verb, const char *done)
{
    char *pos[1];
    int n_pos, ret;

    if ((ret = bt_cli_args(cmd, argc, argv, pos, &n_pos)) >= 0)
        return ret;
    if (!bt_cli_one_target(verb, n_pos, 1, query_arg))
        return BT_EXIT_USAGE;
    if (msg->type == BT_MSG_RESET && (to_arg >= 0) == last_failure_arg) {
        fprintf(stderr, "baton reset: give --to SEQ or --to-last-failure\n");
        return BT_EXIT_USAGE;
    }
    if (msg->type == BT_MSG_RESET && query_arg && !last_failure_arg) {
        fprintf(stderr, "baton reset: with --query, only --to-last-failure (a seq "
                        "belongs to one instance)\n");
        return BT_EXIT_USAGE;
    }
    msg->id = query_arg ? NULL : pos[0];
    msg->seq = to_arg;
    msg->last_failure = last_failure_arg;
    msg->by = (char *)(uintptr_t)bt_cli_who();
    msg->body = reason_arg ? json_string(reason_arg) : NULL;
    if (query_arg)
        ret = bt_cli_batch(cfg, query_arg, yes_arg, msg, verb);
    else if ((ret = bt_cli_control_send(cfg, msg)) == BT_EXIT_OK)
        fprintf(stderr, "%s %s\n", done, msg->id);
    json_decref(msg->body);
    return ret;
}

int bt_cli_pause(struct bt_config *cfg, int argc, char **argv)
{
    struct bt_msg msg = {.type = BT_MSG_PAUSE};
    return control(cfg, argc, argv, &pause_cmd, &msg, "pause", "pause requested for");
}

int bt_cli_resume(struct bt_config *cfg, int argc, char **argv)
{
    struct bt_msg msg = {.type = BT_MSG_RESUME};
    return control(cfg, argc, argv, &resume_cmd, &msg, "resume", "resume requested for");
}

int bt_cli_reset(struct bt_config *cfg, int argc, char **argv)
{
    struct bt_msg msg = {.type = BT_MSG_RESET};
    return control(cfg, argc, argv, &reset_cmd, &msg, "reset", "reset requested for");
}
