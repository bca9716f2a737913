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
#include "journal.h"
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
 * again whenever its history grows (a blocking read, no polling), and at
 * least once a second (blocked leaves no "finished" record). */
static int wait_result(const struct bt_config *cfg, const char *id, int64_t timeout_ms)
{
    struct bt_store *store = bt_cli_store(cfg);
    char key[600], after[64] = "0-0";
    int64_t deadline = timeout_ms > 0 ? bt_clock_now_ms() + timeout_ms : INT64_MAX;
    int ret = BT_EXIT_UNAVAILABLE;

    if (!store)
        return ret;
    bt_store_key(store, id, "", key, sizeof(key));
    while (bt_clock_now_ms() < deadline) {
        redisReply *reply =
            bt_redis_command(bt_store_redis(store), "HMGET %s status result error", key);
        const char *status = NULL;
        if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) {
            fprintf(stderr, "baton: lost Redis at %s while waiting\n", cfg->redis);
            freeReplyObject(reply);
            goto out;
        }
        status = reply->element[0]->str;
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
        if (bt_cli_follow(store, id, after, sizeof(after), left < 1000 ? (int)left : 1000,
                          &finished) == BT_EAGAIN) {
            fprintf(stderr, "baton: lost Redis at %s while waiting\n", cfg->redis);
            goto out;
        }
        json_decref(finished); /* the status read next says the same */
    }
    fprintf(stderr, "baton: workflow %s did not finish within the timeout\n", id);
    ret = BT_EXIT_FAIL;
out:
    bt_store_destroy(store);
    return ret;
}

/* Warns when no live worker serves queue (workers/alive.c): the start is
 * not lost, it waits on the queue's events topic, but nothing runs it. Says
 * nothing when Redis cannot tell. */
static void warn_unserved(const struct bt_config *cfg, const char *queue)
{
    char errstr[256], key[600], topic[600];
    struct bt_store *store = bt_cli_store_new(cfg, errstr, sizeof(errstr));
    redisReply *reply;
    char *suffix = bt_events_suffix(queue);

    if (!store || !suffix)
        goto out;
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
out:
    free(suffix);
    bt_store_destroy(store);
}

static const char *id_arg, *input_arg, *queue_arg, *at_arg;
static bool wait_arg;
static int64_t timeout_arg, execution_timeout_arg;

static const struct bt_arg start_args[] = {
    {"id", 0, BT_ARG_STR, &id_arg, "ID", "TYPE-<microseconds>",
     .help = "the instance id"},
    {"input", 0, BT_ARG_STR, &input_arg, "JSON|@FILE", "null",
     .help = "the workflow's input, or @file to read it from"},
    {"queue", 0, BT_ARG_STR, &queue_arg, "QUEUE", "default",
     .help = "the workflow queue whose workers run it"},
    {"execution-timeout", 0, BT_ARG_DURATION, &execution_timeout_arg, "DURATION", "none",
     1, INT64_C(3155760000000),
     .help = "the workflow fails if it has not finished by then (seconds, or 500ms, "
             "5m, 2h, 1d)"},
    {"at", 0, BT_ARG_STR, &at_arg, "TIME", "now",
     .help = "start it then: RFC 3339 (2026-11-27T10:00:00Z) or +30s, +5m, +2h, +1d"},
    {"wait", 0, BT_ARG_BOOL, &wait_arg,
     .help = "wait until it finishes, print its result, exit 1 when it failed"},
    {"timeout", 0, BT_ARG_DURATION, &timeout_arg, "DURATION", "forever", 1,
     INT64_C(3155760000000), .help = "how long --wait waits"},
    {NULL},
};

static const struct bt_cmd start_cmd = {
    .name = "baton start",
    .synopsis =
        "TYPE [--id ID] [--input JSON|@file] [--queue Q] "
        "[--execution-timeout DURATION] [--at TIME] [--wait] [--timeout DURATION]",
    .about = "Start a workflow instance of TYPE: produce its start event (with --at, a "
             "one-shot schedule fires it at TIME).",
    .args = start_args,
    .settings = (const char *const[]){BT_CLI_KAFKA_SETTINGS, BT_CLI_REDIS_SETTINGS,
                                      "max-payload", NULL},
    .min_pos = 1,
    .max_pos = 1,
};

int bt_cli_start(struct bt_config *cfg, int argc, char **argv)
{
    const char *type, *id;
    char *pos[1];
    json_t *input = NULL;
    char *generated = NULL, *bytes = NULL, *suffix = NULL;
    struct bt_msg msg = {.type = BT_MSG_START};
    size_t len;
    int n_pos, ret;

    if ((ret = bt_cli_args(&start_cmd, argc, argv, pos, &n_pos)) >= 0)
        return ret;
    ret = BT_EXIT_USAGE;
    type = pos[0];
    id = id_arg;
    if (input_arg && !(input = read_input(input_arg)))
        goto out;
    msg.queue = (char *)(uintptr_t)queue_arg;
    msg.timeout_ms = execution_timeout_arg;
    if (!id) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        if (asprintf(&generated, "%s-%lld%06ld", type, (long long)ts.tv_sec,
                     ts.tv_nsec / 1000) < 0)
            goto out;
        id = generated;
    }
    msg.id = (char *)(uintptr_t)id;
    msg.workflow = (char *)(uintptr_t)type;
    msg.body = input;
    msg.ts = bt_clock_now_ms();
    if (!(bytes = bt_codec_encode(&msg, &len))) {
        fprintf(stderr, "baton start: invalid id or type (1..256 characters, no control "
                        "characters)\n");
        goto out;
    }
    suffix = bt_events_suffix(msg.queue);
    ret = at_arg ? bt_cli_schedule_at(cfg, type, id, bytes, at_arg)
                 : bt_cli_produce(cfg, suffix, id, bytes, len);
    if (ret)
        goto out;
    if (!at_arg) {
        fprintf(stderr, "started %s %s\n", type, id);
        warn_unserved(cfg, msg.queue);
    }
    if (!wait_arg)
        printf("%s\n", id);
    else
        ret = wait_result(cfg, id, timeout_arg);
out:
    json_decref(input);
    free(generated);
    free(bytes);
    free(suffix);
    return ret;
}
