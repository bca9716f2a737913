/* The activity side of the SDK: one bt_act per attempt, living on the
 * executing thread's stack; bt_act_fail() and bt_act_throttled() record the
 * outcome that bt_activity_execute() turns into an event. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "activity.h"
#include "jsonw.h"
#include "baton.h"
#include "log.h"

#define BT_ACT_FAILED 1 /* what bt_act_fail() returns for the activity to return */

struct bt_act {
    const struct bt_msg *task;
    char key[BT_ID_MAX + 32];
    char *error_type;
    char *error_message;
    bool retryable;
    int64_t retry_after_ms;
    bool failed;
    int64_t last_heartbeat;
};

int bt_act_fail(bt_act *act, const char *error_type, bool retryable, const char *fmt, ...)
{
    char text[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    free(act->error_type);
    free(act->error_message);
    act->error_type = strdup(error_type && *error_type ? error_type : "ActivityError");
    act->error_message = strdup(text);
    act->retryable = retryable;
    act->failed = true;
    return BT_ACT_FAILED;
}

int bt_act_throttled(bt_act *act, int64_t retry_after_ms)
{
    bt_act_fail(act, "Throttled", true, "the downstream asked to retry after %lld ms",
                (long long)retry_after_ms);
    act->retry_after_ms = retry_after_ms > 0 ? retry_after_ms : 1;
    return BT_ACT_FAILED;
}

int bt_act_heartbeat(bt_act *act, const json_t *details)
{
    struct timespec ts;

    (void)details;
    clock_gettime(CLOCK_REALTIME, &ts);
    act->last_heartbeat = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    return 0;
}

const char *bt_act_idempotency_key(const bt_act *act)
{
    return act->key;
}

const char *bt_act_workflow_id(const bt_act *act)
{
    return act->task->id;
}

int64_t bt_act_seq(const bt_act *act)
{
    return act->task->seq;
}

int bt_act_attempt(const bt_act *act)
{
    return act->task->attempt;
}

/* "<id>/<seq>" (snprintf costs more than the rest of a no-op attempt) */
static void activity_key(char *buf, size_t size, const char *id, int64_t seq)
{
    size_t len = strlen(id);

    if (len + 1 + BT_JW_INT_SIZE > size) {
        snprintf(buf, size, "%s/%lld", id, (long long)seq);
        return;
    }
    memcpy(buf, id, len);
    buf[len] = '/';
    bt_jw_itoa(buf + len + 1, seq);
}

/* Fills *event with act's outcome for task: result on success. */
static void outcome(const bt_act *act, int rc, json_t *result, const struct bt_msg *task,
                    struct bt_msg *event)
{
    memset(event, 0, sizeof(*event));
    event->id = strdup(task->id);
    event->name = strdup(task->name);
    event->seq = task->seq;
    event->attempt = task->attempt;
    if (rc == 0 && !act->failed) {
        event->type = BT_MSG_COMPLETED;
        event->body = result ? result : json_null();
        return;
    }
    json_decref(result);
    event->type = BT_MSG_FAILED;
    event->error.type = act->error_type;
    event->error.message = act->error_message;
    event->error.retryable = act->retryable;
    event->error.retry_after_ms = act->retry_after_ms;
    bt_log(BT_LOG_INFO, "activity attempt failed: %s: %s workflow=%s seq=%lld attempt=%d",
           act->error_type, act->error_message, task->id, (long long)task->seq,
           task->attempt);
}

void bt_activity_execute(const struct bt_activity_def *def, const struct bt_msg *task,
                         const char *worker, struct bt_msg *event)
{
    bt_act act = {.task = task};
    json_t *result = NULL;
    int rc;

    activity_key(act.key, sizeof(act.key), task->id, task->seq);
    if (!def) {
        bt_act_fail(&act, "ActivityNotRegistered", false,
                    "activity \"%s\" is not registered on worker %s (queue %s)",
                    task->name, worker, task->queue);
        rc = BT_ACT_FAILED;
    } else {
        rc = def->fn(&act, task->body ? task->body : json_null(), &result);
        if (rc != 0 && !act.failed)
            bt_act_fail(&act, "ActivityError", true, "activity returned %d", rc);
    }
    outcome(&act, rc, result, task, event);
}

void bt_activity_lost(const struct bt_msg *task, const char *worker, struct bt_msg *event)
{
    bt_act act = {.task = task};

    bt_log(BT_LOG_WARN,
           "activity attempt lost by the workers that took it before, not run again: "
           "workflow=%s seq=%lld attempt=%d activity=%s",
           task->id, (long long)task->seq, task->attempt, task->name);
    bt_act_fail(&act, "WorkerLost", true,
                "attempt %d of activity \"%s\" was taken by other workers before %s, "
                "and each died (or lost the task) before it finished: does the "
                "activity crash its process?",
                task->attempt, task->name, worker);
    outcome(&act, BT_ACT_FAILED, NULL, task, event);
}

char *bt_activity_encode(struct bt_msg *event, int64_t max_payload, size_t *len)
{
    char *bytes = bt_codec_encode(event, len), text[300];

    if (!bytes || (int64_t)*len <= max_payload)
        return bytes;
    snprintf(text, sizeof(text),
             "the activity's result takes %zu bytes, over the limit of %lld (setting "
             "max-payload): return large data by reference",
             *len, (long long)max_payload);
    bt_log(BT_LOG_WARN, "activity outcome too large: %s workflow=%s seq=%lld", text,
           event->id, (long long)event->seq);
    free(bytes);
    json_decref(event->body);
    free(event->error.type);
    free(event->error.message);
    event->body = NULL;
    event->type = BT_MSG_FAILED;
    event->error.type = strdup("PayloadTooLarge");
    event->error.message = strdup(text);
    event->error.retryable = false;
    event->error.retry_after_ms = 0;
    return bt_codec_encode(event, len);
}
