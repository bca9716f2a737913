/* The test kit's versioning check (baton_test.h, bt_test_replay_history): a
 * recorded history turned back into the events that made it. The records a
 * decision writes (retry_scheduled, signal_wait, finished...) are its output
 * and are not replayed; the records of what came in (started, outcomes,
 * timers, signals, cancels, children) are. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "baton_test.h"
#include "err.h"
#include "replay.h"
#include "testkit.h"

#define REPLAY_ID "replayed"

static const char *text(const json_t *rec, const char *key)
{
    return json_string_value(json_object_get(rec, key));
}

static int64_t number(const json_t *rec, const char *key)
{
    return (int64_t)json_integer_value(json_object_get(rec, key));
}

/* Fills msg's error from a recorded {"type","message",...}; strings borrowed. */
static void recorded_error(struct bt_msg *msg, const json_t *error)
{
    const json_t *retryable = json_object_get(error, "retryable");

    msg->error.type =
        (char *)(uintptr_t)(text(error, "type") ? text(error, "type") : "?");
    msg->error.message =
        (char *)(uintptr_t)(text(error, "message") ? text(error, "message") : "");
    msg->error.retryable = retryable ? json_is_true(retryable) : true;
    msg->error.retry_after_ms = number(error, "retry_after_ms");
}

/* The event behind record rec, or false when rec is a decision's output.
 * msg's strings and values are borrowed from rec. */
static bool event_of(const json_t *rec, struct bt_msg *msg)
{
    const char *ev = text(rec, "ev");
    static const struct {
        const char *ev;
        enum bt_msg_type type;
    } kinds[] = {{"started", BT_MSG_START},
                 {"signal_received", BT_MSG_SIGNAL},
                 {"unblock_requested", BT_MSG_SIGNAL},
                 {"cancel_requested", BT_MSG_CANCEL},
                 {"activity_completed", BT_MSG_COMPLETED},
                 {"activity_failed", BT_MSG_FAILED},
                 {"timer_fired", BT_MSG_TIMER},
                 {"child_completed", BT_MSG_CHILD_COMPLETED},
                 {"child_failed", BT_MSG_CHILD_FAILED}};
    size_t k = 0;

    while (ev && k < sizeof(kinds) / sizeof(kinds[0]) && strcmp(kinds[k].ev, ev))
        k++;
    if (!ev || k == sizeof(kinds) / sizeof(kinds[0]))
        return false;
    *msg = (struct bt_msg){.type = kinds[k].type,
                           .id = (char *)(uintptr_t)REPLAY_ID,
                           .ts = number(rec, "ts")};
    msg->workflow = (char *)(uintptr_t)text(rec, "workflow");
    msg->queue = (char *)(uintptr_t)text(rec, "queue");
    msg->parent_id = (char *)(uintptr_t)text(rec, "parent");
    msg->name = (char *)(uintptr_t)(!strcmp(ev, "unblock_requested") ? BT_SIGNAL_UNBLOCK
                                                                     : text(rec, "name"));
    msg->kind = (char *)(uintptr_t)text(rec, "kind");
    msg->child = (char *)(uintptr_t)text(rec, "child");
    msg->seq = number(rec, "seq");
    msg->attempt = (int)number(rec, "attempt");
    msg->terminate = json_is_true(json_object_get(rec, "terminate"));
    msg->body = json_object_get(rec, msg->type == BT_MSG_START    ? "input"
                                     : msg->type == BT_MSG_SIGNAL ? "payload"
                                     : msg->type == BT_MSG_CANCEL ? "reason"
                                                                  : "result");
    if (json_is_null(msg->body))
        msg->body = NULL;
    if (msg->queue && !strcmp(msg->queue, "default"))
        msg->queue = NULL;
    if (msg->type == BT_MSG_FAILED || msg->type == BT_MSG_CHILD_FAILED)
        recorded_error(msg, json_object_get(rec, "error"));
    return true;
}

/* The records of history: a JSON array, or one object per line. */
static json_t *read_records(const char *history)
{
    json_t *all = json_loads(history, JSON_DECODE_ANY, NULL);
    const char *line = history;

    if (json_is_array(all))
        return all;
    json_decref(all);
    all = json_array();
    while (line && *line) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len) {
            json_t *rec = json_loadb(line, len, 0, NULL);
            if (!json_is_object(rec)) {
                json_decref(rec);
                json_decref(all);
                return NULL;
            }
            json_array_append_new(all, rec);
        }
        line = end ? end + 1 : NULL;
    }
    return all;
}

static int say(char *why, size_t n, int ret, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int say(char *why, size_t n, int ret, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, n, fmt, ap);
    va_end(ap);
    return ret;
}

/* The replayed instance against what the record says happened in the end. */
static int check_end(bt_test_env *env, const char *recorded, char *why, size_t n)
{
    const char *status = bt_test_status(env, REPLAY_ID);

    if (status && !strcmp(status, "blocked"))
        return say(why, n, 1, "the code blocks: %s",
                   json_string_value(
                       json_object_get(bt_test_failure(env, REPLAY_ID), "message")));
    if (recorded && (!status || strcmp(status, recorded)))
        return say(why, n, 1, "the recorded run ended %s, the code's is %s", recorded,
                   status ? status : "not started");
    return 0;
}

int bt_test_replay_history(bt_test_env *env, const char *history, char *why,
                           size_t why_size)
{
    json_t *records = history ? read_records(history) : NULL;
    const char *recorded_end = NULL;
    size_t i;
    int ret = 0, rc;

    if (!records || !json_array_size(records)) {
        json_decref(records);
        return say(why, why_size, -1, "no history records to replay");
    }
    if (bt_testkit_find(env, REPLAY_ID)) {
        json_decref(records);
        return say(why, why_size, -1, "this environment replayed a history already");
    }
    env->replaying = true;
    for (i = 0; i < json_array_size(records) && !ret; i++) {
        const json_t *rec = json_array_get(records, i);
        const char *ev = text(rec, "ev"), *reason;
        struct bt_msg msg;
        if (ev && !strcmp(ev, "continued_as_new"))
            break;
        if (ev && !strcmp(ev, "finished"))
            recorded_end = text(rec, "status");
        if (!event_of(rec, &msg))
            continue;
        if (msg.ts > env->now)
            env->now = msg.ts;
        rc = bt_testkit_apply(env, &msg, &reason);
        if (rc && rc != BT_EEXIST) /* a duplicate is no verdict */
            ret =
                say(why, why_size, 1, "record %zu (%s seq %lld): the code refuses it: %s",
                    i + 1, ev, (long long)msg.seq, reason ? reason : "?");
        else if (bt_test_status(env, REPLAY_ID) &&
                 !strcmp(bt_test_status(env, REPLAY_ID), "blocked"))
            ret = check_end(env, NULL, why, why_size);
    }
    if (!ret)
        ret = check_end(env, recorded_end, why, why_size);
    env->replaying = false;
    json_decref(records);
    return ret;
}
