/* `baton start TYPE [--id ID] [--input JSON|@file] [--queue Q]
 * [--execution-timeout DURATION] [--at TIME] [--wait] [--timeout DURATION]`:
 * produces a start event (with --at, a one-shot schedule fires it at TIME);
 * with --wait, follows the instance in Redis until it finishes, prints its
 * result and exits 1 when it failed. */
#define _GNU_SOURCE /* asprintf */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "cli.h"
#include "codec.h"
#include "err.h"
#include "instance.h"
#include "kafka.h"

static json_t *read_input(const char *arg)
{
    json_error_t jerr;
    json_t *root = arg[0] == '@' ? json_load_file(arg + 1, JSON_DECODE_ANY, &jerr)
                                 : json_loads(arg, JSON_DECODE_ANY, &jerr);

    if (!root)
        fprintf(stderr, "baton: --input: %s (line %d, column %d)\n", jerr.text, jerr.line,
                jerr.column);
    return root;
}

/* Follows the instance's status until it is final (or blocked): reads it
 * again whenever a run of it ends (woken by the commit, no polling), and at
 * least once a second (blocked leaves no "finished" record). A status counts
 * from run min_run on: a new run of a finished id is not done because the run
 * it follows is. */
static int wait_result(const struct bt_config *cfg, const char *id, int64_t timeout_ms,
                       int64_t min_run)
{
    struct bt_store *store = bt_cli_store(cfg);
    char key[600];
    struct bt_cli_follow follow;
    struct bt_history h;
    int64_t deadline = timeout_ms > 0 ? bt_clock_now_ms() + timeout_ms : INT64_MAX;
    int ret = BT_EXIT_UNAVAILABLE;

    if (!store)
        return ret;
    bt_cli_follow_init(&follow, cfg);
    bt_history_init(&h);
    bt_store_key(store, id, "", key, sizeof(key));
    while (bt_clock_now_ms() < deadline) {
        redisReply *reply = bt_redis_command(bt_store_redis(store),
                                             "HMGET %s status result error run", key);
        const char *status = NULL;
        if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 4) {
            freeReplyObject(reply);
            if (bt_cli_follow_outage(&follow, false))
                break;
            continue;
        }
        bt_cli_follow_outage(&follow, true);
        status = reply->element[0]->str;
        if (reply->element[3]->str && strtoll(reply->element[3]->str, NULL, 10) < min_run)
            status = NULL; /* the run this start follows */
        if (status && !strcmp(status, "completed")) {
            printf("%s\n", reply->element[1]->str ? reply->element[1]->str : "null");
            ret = BT_EXIT_OK;
        } else if (status && (bt_status_final(bt_status_parse(status)) ||
                              !strcmp(status, "blocked"))) {
            fprintf(stderr, "baton: workflow %s %s: %s\n", id, status,
                    reply->element[2]->str ? reply->element[2]->str : "");
            ret = BT_EXIT_FAIL;
        }
        freeReplyObject(reply);
        if (ret != BT_EXIT_UNAVAILABLE)
            goto out;
        int64_t left = deadline - bt_clock_now_ms();
        json_t *finished = NULL;
        if (bt_cli_follow(&follow, store, id, left < 1000 ? (int)left : 1000, &h,
                          &finished) == BT_EAGAIN)
            break;
        json_decref(finished); /* the status read next says the same */
    }
    if (follow.down_since) {
        fprintf(stderr, "baton: lost Redis at %s while waiting\n", cfg->redis);
    } else {
        fprintf(stderr, "baton: workflow %s did not finish within the timeout\n", id);
        ret = BT_EXIT_FAIL;
    }
out:
    bt_history_release(&h);
    bt_cli_follow_release(&follow);
    bt_store_destroy(store);
    return ret;
}

/* Warns when no live worker serves queue (workers/alive.c): the start is
 * not lost, it waits on the queue's events topic, but nothing runs it. Says
 * nothing when Redis cannot tell. */
static void warn_unserved(const struct bt_config *cfg, struct bt_store *store,
                          const char *queue)
{
    char key[600], topic[600];
    redisReply *reply;
    char *suffix = bt_events_suffix(queue);

    if (!suffix)
        return;
    reply = bt_redis_command(
        bt_store_redis(store), "EXISTS %s",
        bt_serving_key(cfg->key_prefix, queue ? queue : "default", key, sizeof(key)));
    if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 0)
        fprintf(stderr,
                "baton start: warning: no worker serves queue \"%s\" (none alive in the "
                "last %d s); the start waits on %s until one does\n",
                queue ? queue : "default", BT_ALIVE_TTL_MS / 1000,
                bt_kafka_topic(cfg, suffix, topic, sizeof(topic)));
    freeReplyObject(reply);
    free(suffix);
}

/* msg's start event, checked against the payload limit before anything is
 * sent: a new buffer (caller frees) and its *len, or NULL having said why
 * (*ret: the exit status). */
static char *encode_start(const struct bt_config *cfg, const struct bt_msg *msg,
                          size_t *len, int *ret)
{
    char *bytes;

    *ret = BT_EXIT_USAGE;
    if (!bt_cli_queue_ok("start", msg->queue))
        return NULL;
    if (!(bytes = bt_codec_encode(msg, len))) {
        fprintf(stderr, "baton start: invalid id or type (1..256 characters, no control "
                        "characters)\n");
        return NULL;
    }
    if ((int64_t)*len > cfg->max_payload) {
        fprintf(stderr,
                "baton start: the start event is %zu bytes, over the limit of "
                "%lld bytes (setting max-payload); pass large inputs by reference\n",
                *len, (long long)cfg->max_payload);
        free(bytes);
        *ret = BT_EXIT_FAIL;
        return NULL;
    }
    return bytes;
}

static const char *id_arg, *input_arg, *queue_arg, *at_arg;
static const char *conflict_arg = "fail", *reuse_arg = "allow";
static const char *signal_arg, *signal_payload_arg;
static bool wait_arg;
static int64_t timeout_arg, execution_timeout_arg;

/* the flags start and signal-with-start share */
#define ARG_INPUT                                                                        \
    {                                                                                    \
        "input", 0, BT_ARG_STR, &input_arg, "JSON|@FILE", "null",                        \
            .help = "the workflow's input, or @file to read it from"                     \
    }
#define ARG_QUEUE                                                                        \
    {                                                                                    \
        "queue", 0, BT_ARG_STR, &queue_arg, "QUEUE", "default",                          \
            .help = "the workflow queue whose workers run it"                            \
    }
#define ARG_EXECUTION_TIMEOUT                                                            \
    {                                                                                    \
        "execution-timeout", 0, BT_ARG_DURATION, &execution_timeout_arg, "DURATION",     \
            "none", 1, INT64_C(3155760000000),                                           \
            .help =                                                                      \
                "the workflow fails if it has not finished by then (seconds, or 500ms, " \
                "5m, 2h, 1d)"                                                            \
    }
#define ARG_ID_REUSE                                                                     \
    {                                                                                    \
        "id-reuse", 0, BT_ARG_CHOICE, &reuse_arg, "POLICY", "allow",                     \
            .choices = "allow|reject",                                                   \
            .help =                                                                      \
                "when an instance of the id has finished: start a new run of it, or "    \
                "refuse (exit 4)"                                                        \
    }
#define ARG_WAIT                                                                         \
    {                                                                                    \
        "wait", 0, BT_ARG_BOOL, &wait_arg,                                               \
            .help = "wait until it finishes, print its result, exit 1 when it failed"    \
    }
#define ARG_TIMEOUT                                                                      \
    {                                                                                    \
        "timeout", 0, BT_ARG_DURATION, &timeout_arg, "DURATION", "forever", 1,           \
            INT64_C(3155760000000), .help = "how long --wait waits"                      \
    }

static const struct bt_arg start_args[] = {
    {"id", 0, BT_ARG_STR, &id_arg, "ID", "TYPE-<microseconds>",
     .help = "the instance id"},
    ARG_INPUT,
    ARG_QUEUE,
    ARG_EXECUTION_TIMEOUT,
    {"at", 0, BT_ARG_STR, &at_arg, "TIME", "now",
     .help = "start it then: RFC 3339 (2026-11-27T10:00:00Z) or +30s, +5m, +2h, +1d"},
    {"id-conflict", 0, BT_ARG_CHOICE, &conflict_arg, "POLICY", "fail",
     .choices = "fail|use-existing|terminate-existing",
     .help = "when an instance of the id runs: refuse (exit 4), use it, or terminate "
             "it and start a new run"},
    ARG_ID_REUSE,
    ARG_WAIT,
    ARG_TIMEOUT,
    {NULL},
};

static const struct bt_arg signal_with_start_args[] = {
    {"id", 0, BT_ARG_STR, &id_arg, "ID", NULL, .help = "the instance id (required)"},
    {"signal", 0, BT_ARG_STR, &signal_arg, "NAME", NULL,
     .help = "the signal to send (required)"},
    {"signal-payload", 0, BT_ARG_STR, &signal_payload_arg, "JSON", "null",
     .help = "what the workflow receives with the signal"},
    ARG_INPUT,
    ARG_QUEUE,
    ARG_EXECUTION_TIMEOUT,
    ARG_ID_REUSE,
    ARG_WAIT,
    ARG_TIMEOUT,
    {NULL},
};

static const struct bt_cmd signal_with_start_cmd = {
    .name = "baton signal-with-start",
    .synopsis = "TYPE --id ID --signal NAME [--signal-payload JSON] [--input JSON|@file] "
                "[--queue Q] [--execution-timeout DURATION] [--id-reuse allow|reject] "
                "[--wait] [--timeout DURATION]",
    .about = "Send the signal NAME to the instance ID of TYPE, starting it first when it "
             "is not running (a finished one gets a new run unless --id-reuse "
             "reject).\nThe start and the signal go to the same partition: the "
             "workflow sees the signal after its start.",
    .args = signal_with_start_args,
    .settings = (const char *const[]){BT_CLI_KAFKA_SETTINGS, BT_CLI_REDIS_SETTINGS,
                                      "max-payload", NULL},
    .min_pos = 1,
    .max_pos = 1,
};

static const struct bt_cmd start_cmd = {
    .name = "baton start",
    .synopsis =
        "TYPE [--id ID] [--input JSON|@file] [--queue Q] "
        "[--execution-timeout DURATION] [--at TIME] "
        "[--id-conflict fail|use-existing|terminate-existing] [--id-reuse allow|reject] "
        "[--wait] [--timeout DURATION]",
    .about = "Start a workflow instance of TYPE: produce its start event (with --at, a "
             "one-shot schedule fires it at TIME). Refused at once when live workers of "
             "the queue do not run TYPE,\nor the input is over the payload limit. Exit "
             "4: the id is taken (see --id-conflict, --id-reuse).",
    .args = start_args,
    .settings = (const char *const[]){BT_CLI_KAFKA_SETTINGS, BT_CLI_REDIS_SETTINGS,
                                      "max-payload", NULL},
    .min_pos = 1,
    .max_pos = 1,
};

/* Ends the instance that runs under msg->id, for a new run to follow. */
static int terminate_existing(const struct bt_config *cfg, const struct bt_msg *start,
                              const char *queue)
{
    struct bt_msg msg = {.type = BT_MSG_CANCEL, .id = start->id, .terminate = true};
    char *bytes, *suffix = bt_events_suffix(queue);
    size_t len;
    int ret = BT_EXIT_FAIL;

    msg.body = json_string("replaced by a new start (--id-conflict terminate-existing)");
    if ((bytes = bt_codec_encode(&msg, &len)) && suffix)
        ret = bt_cli_produce(cfg, suffix, msg.id, bytes, len);
    json_decref(msg.body);
    free(bytes);
    free(suffix);
    return ret;
}

/* --id-conflict and --id-reuse against what lives under msg->id: sets
 * msg->replaces_run when a new run is to follow a finished one, *use when
 * the running one is to be used. Returns -1 to go on, else an exit status
 * (the reason said on stderr). */
static int id_policy(const struct bt_config *cfg, struct bt_store *store,
                     struct bt_msg *msg, bool *use)
{
    struct bt_cli_existing ex;
    int ret = bt_cli_existing(store, msg->id, &ex);

    if (ret || !ex.exists)
        return ret ? ret : -1;
    if (ex.child || strcmp(ex.queue, msg->queue ? msg->queue : "default")) {
        fprintf(stderr, "baton start: %s is taken by %s; pick another id\n", msg->id,
                ex.child ? "a child workflow" : "an instance of another queue");
        return BT_EXIT_CONFLICT;
    }
    if (!ex.finished && !strcmp(conflict_arg, "fail")) {
        fprintf(stderr,
                "baton start: workflow %s is already %s (run %d); --id-conflict "
                "use-existing uses it, terminate-existing ends it and starts anew\n",
                msg->id, ex.status, ex.run);
        return BT_EXIT_CONFLICT;
    }
    if (ex.finished && !strcmp(reuse_arg, "reject")) {
        fprintf(stderr,
                "baton start: workflow %s already ran (%s, run %d) and --id-reuse is "
                "reject\n",
                msg->id, ex.status, ex.run);
        return BT_EXIT_CONFLICT;
    }
    if (!ex.finished && !strcmp(conflict_arg, "use-existing")) {
        fprintf(stderr, "workflow %s is already %s: using it\n", msg->id, ex.status);
        *use = true;
        return -1;
    }
    if (!ex.finished && (ret = terminate_existing(cfg, msg, ex.queue)))
        return ret;
    /* the terminate goes first on the same partition: the start finds it done */
    msg->replaces_run = ex.run;
    fprintf(stderr, "workflow %s %s on run %d: run %d follows\n", msg->id,
            ex.finished ? ex.status : "terminated", ex.run, ex.run + 1);
    return -1;
}

/* signal-with-start's signal, after the start (bt_cli_produce waits for each
 * delivery: one partition, in this order). */
static int send_signal(const struct bt_config *cfg, const struct bt_msg *start,
                       const char *suffix)
{
    struct bt_msg msg = {.type = BT_MSG_SIGNAL,
                         .id = start->id,
                         .name = (char *)(uintptr_t)signal_arg,
                         .ts = bt_clock_now_ms()};
    json_error_t jerr;
    size_t len;
    char *bytes;
    int ret = BT_EXIT_USAGE;

    if (signal_payload_arg &&
        !(msg.body = json_loads(signal_payload_arg, JSON_DECODE_ANY, &jerr))) {
        fprintf(stderr, "baton signal-with-start: --signal-payload: %s\n", jerr.text);
        return ret;
    }
    if ((bytes = bt_codec_encode(&msg, &len))) {
        ret = bt_cli_produce(cfg, suffix, msg.id, bytes, len);
        if (!ret)
            fprintf(stderr, "signalled %s %s\n", msg.id, msg.name);
    } else {
        fprintf(stderr, "baton signal-with-start: invalid signal name (1..256 "
                        "characters, no control characters)\n");
    }
    free(bytes);
    json_decref(msg.body);
    return ret;
}

/* Produces the start (or schedules it at --at), unless *use says the running
 * instance is used, and signal-with-start's signal; then --wait, or prints
 * the id. */
static int send_start(struct bt_config *cfg, struct bt_store *store,
                      const struct bt_msg *msg, const char *bytes, size_t len, bool use)
{
    char *suffix = bt_events_suffix(msg->queue);
    int ret = BT_EXIT_OK;

    if (!use)
        ret = at_arg ? bt_cli_schedule_at(cfg, msg->workflow, msg->id, bytes, at_arg)
                     : bt_cli_produce(cfg, suffix, msg->id, bytes, len);
    if (!ret && signal_arg)
        ret = send_signal(cfg, msg, suffix);
    free(suffix);
    if (ret)
        return ret;
    if (!at_arg && !use) {
        fprintf(stderr, "started %s %s\n", msg->workflow, msg->id);
        warn_unserved(cfg, store, msg->queue);
    }
    if (!wait_arg) {
        printf("%s\n", msg->id);
        return BT_EXIT_OK;
    }
    return wait_result(cfg, msg->id, timeout_arg,
                       msg->replaces_run ? msg->replaces_run + 1 : 0);
}

/* start, or signal-with-start (cmd) */
static int start(struct bt_config *cfg, const struct bt_cmd *cmd, int argc, char **argv)
{
    char *pos[1], *generated = NULL, *bytes = NULL;
    struct bt_msg msg = {.type = BT_MSG_START};
    struct bt_store *store = NULL;
    bool use = false;
    size_t len;
    int n_pos, ret;

    if ((ret = bt_cli_args(cmd, argc, argv, pos, &n_pos)) >= 0)
        return ret;
    ret = BT_EXIT_USAGE;
    if (cmd == &signal_with_start_cmd) {
        if (!id_arg || !signal_arg) {
            fprintf(stderr, "baton signal-with-start: --id and --signal are required\n");
            return ret;
        }
        conflict_arg = "use-existing"; /* a running instance gets the signal */
    }
    if (input_arg && !(msg.body = read_input(input_arg)))
        goto out;
    if (!id_arg) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        if (asprintf(&generated, "%s-%lld%06ld", pos[0], (long long)ts.tv_sec,
                     ts.tv_nsec / 1000) < 0)
            goto out;
    }
    msg.id = id_arg ? (char *)(uintptr_t)id_arg : generated;
    msg.workflow = pos[0];
    msg.queue = (char *)(uintptr_t)queue_arg;
    msg.timeout_ms = execution_timeout_arg;
    msg.ts = bt_clock_now_ms();
    if (!(bytes = encode_start(cfg, &msg, &len, &ret)))
        goto out;
    ret = BT_EXIT_UNAVAILABLE;
    if (!(store = bt_cli_store(cfg)))
        goto out;
    /* a start --at may come before its type's deploy: warned, not refused */
    if ((ret = bt_cli_check_type(store, msg.queue, msg.workflow, !at_arg)))
        goto out;
    if (id_arg && (ret = id_policy(cfg, store, &msg, &use)) >= 0)
        goto out;
    if (msg.replaces_run) {
        free(bytes);
        if (!(bytes = encode_start(cfg, &msg, &len, &ret)))
            goto out;
    }
    ret = send_start(cfg, store, &msg, bytes, len, use);
out:
    json_decref(msg.body);
    free(generated);
    free(bytes);
    bt_store_destroy(store);
    return ret;
}

int bt_cli_start(struct bt_config *cfg, int argc, char **argv)
{
    return start(cfg, &start_cmd, argc, argv);
}

int bt_cli_signal_with_start(struct bt_config *cfg, int argc, char **argv)
{
    return start(cfg, &signal_with_start_cmd, argc, argv);
}
