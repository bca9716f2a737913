/* The workflow role's batches in flight (wftask_int.h): committed, their
 * messages on the way to Kafka. A flight lands once all its delivery
 * reports are in, oldest first: only then are its commands forgotten from
 * the outbox and its offsets committed, so neither passes a command that
 * is not on Kafka. A failed delivery is sent again, after a backoff. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "err.h"
#include "failpoint.h"
#include "log.h"
#include "wftask_int.h"

struct wf_flight *wf_flight_new(void)
{
    struct wf_flight *f = calloc(1, sizeof(*f));

    BT_ASSERT(f);
    f->backoff_ms = 50;
    return f;
}

void wf_sent_release(struct wf_flight *f)
{
    for (size_t i = 0; i < f->n_sent; i++) {
        for (size_t c = 0; c < f->sent[i].n; c++)
            bt_command_release(&f->sent[i].cmds[c]);
        free(f->sent[i].cmds);
        free(f->sent[i].id);
    }
    f->n_sent = 0;
}

void wf_flight_destroy(struct wf_flight *f)
{
    if (!f)
        return;
    wf_sent_release(f);
    free(f->sent);
    for (size_t i = 0; i < f->n_held; i++) {
        bt_command_release(f->held[i].cmds);
        free(f->held[i].cmds);
        free(f->held[i].id);
    }
    free(f->held);
    if (f->offsets)
        rd_kafka_topic_partition_list_destroy(f->offsets);
    free(f);
}

static bool in_air(const struct wf_flight *f)
{
    return __atomic_load_n(&f->cmds.pending, __ATOMIC_ACQUIRE) > 0 ||
           __atomic_load_n(&f->dlq.pending, __ATOMIC_ACQUIRE) > 0;
}

/* Sends a flight's commands again after a failed delivery (its reports are
 * all in): duplicates are dropped downstream, a lost command is not. */
static void resend(struct bt_wftask *wt, struct wf_flight *f)
{
    bt_log(BT_LOG_WARN, "commands not delivered, sending again: %s backoff_ms=%d",
           rd_kafka_err2str(f->cmds.err), f->backoff_ms);
    f->cmds = (struct bt_kafka_batch){0};
    for (size_t i = 0; i < f->n_sent; i++)
        for (size_t c = 0; c < f->sent[i].n; c++) {
            const struct bt_command *cmd = &f->sent[i].cmds[c];
            char topic[512];
            bt_kafka_topic(wt->cfg, cmd->topic, topic, sizeof(topic));
            if (bt_kafka_produce(wt->producer, topic, cmd->key, strlen(cmd->key),
                                 cmd->payload, cmd->len, &f->cmds))
                f->cmds.failed++; /* not queued: try again after the backoff */
        }
    f->retry_at = bt_clock_mono_ms() + f->backoff_ms;
    f->backoff_ms = f->backoff_ms < 5000 ? f->backoff_ms * 2 : f->backoff_ms;
}

/* Whether flight f delivers a result. */
static bool sends_result(const struct wf_flight *f)
{
    for (size_t i = 0; i < f->n_sent; i++)
        for (size_t c = 0; c < f->sent[i].n; c++)
            if (!strcmp(f->sent[i].cmds[c].topic, "results"))
                return true;
    return false;
}

/* Lands the flights whose messages are all delivered, oldest first: forgets
 * their commands from the outbox and commits their offsets. Then, when more
 * than max_left are in flight, waits for the oldest; patient: until they
 * land, else gives up after one wait (at shutdown, or when Kafka is gone
 * during a revoke: their offsets stay uncommitted, which only redelivers). */
void wf_land(struct bt_wftask *wt, int max_left, bool patient)
{
    rd_kafka_poll(wt->producer, 0);
    while (wt->flights) {
        struct wf_flight *f = wt->flights;
        rd_kafka_resp_err_t err;
        if (in_air(f) || (f->cmds.failed && bt_clock_mono_ms() < f->retry_at)) {
            if (wt->n_flights <= max_left)
                break;
            if (bt_kafka_wait(wt->producer, &f->cmds, 10000) == BT_ETIMEDOUT ||
                bt_kafka_wait(wt->producer, &f->dlq, 10000) == BT_ETIMEDOUT) {
                bt_log(BT_LOG_WARN, "commands not delivered yet, waiting");
                if (!patient || wf_stop_asked(wt))
                    break;
            }
            if (f->cmds.failed && !in_air(f)) {
                int64_t left = f->retry_at - bt_clock_mono_ms();
                if ((!patient || wf_stop_asked(wt)) && left > 0)
                    break;
                if (left > 0)
                    bt_clock_sleep_ms((int)left);
            }
            continue;
        }
        if (f->cmds.failed) {
            resend(wt, f);
            continue;
        }
        if (bt_failpoint("exit-before-forgetting-a-result") && sends_result(f)) {
            bt_log(BT_LOG_WARN, "failpoint exit-before-forgetting-a-result: exiting");
            _exit(9);
        }
        /* kept by the store until Redis answers it, across restarts */
        if (bt_store_forget(wt->store, f->sent, f->n_sent) ||
            bt_store_forget(wt->store, f->held, f->n_held))
            bt_log(BT_LOG_WARN, "cannot clear the outbox; commands may be sent twice");
        if (f->offsets->cnt && (err = rd_kafka_commit(wt->consumer, f->offsets, 1)))
            bt_log(BT_LOG_WARN, "cannot commit offsets: %s", rd_kafka_err2str(err));
        if (!(wt->flights = f->next))
            wt->landing = &wt->flights;
        wt->n_flights--;
        wf_flight_destroy(f);
    }
}

/* True when the command field of instance id is on its way in a flight. */
static bool flying(const struct bt_wftask *wt, const char *id, const char *field)
{
    for (const struct wf_flight *f = wt->flights; f; f = f->next)
        for (size_t i = 0; i < f->n_sent; i++)
            if (!strcmp(f->sent[i].id, id))
                for (size_t c = 0; c < f->sent[i].n; c++)
                    if (!strcmp(f->sent[i].cmds[c].field, field))
                        return true;
    return false;
}

/* Drops the outbox commands of a freshly loaded instance that this worker
 * has in flight already (they are forgotten when they land). */
void wf_drop_flying(const struct bt_wftask *wt, struct bt_instance *inst)
{
    struct bt_delta *d = &inst->delta;
    size_t k = 0;

    for (size_t c = 0; c < d->n_cmds; c++) {
        if (!flying(wt, inst->id, d->cmds[c].field)) {
            d->cmds[k++] = d->cmds[c];
            continue;
        }
        bt_command_release(&d->cmds[c]);
    }
    d->n_cmds = k;
}

/* Notes in the batch's flight the held outbox fields of the eager tasks
 * whose outcomes it applied or forwarded: forgotten when it lands (the
 * outcome committed or on Kafka by then). A worker that dies first leaves
 * them to the outbox sweep, which sends those tasks again; so does one that
 * runs out of memory here, where it aborts (the outcomes are applied). */
static void note_held(struct bt_wftask *wt)
{
    struct wf_flight *f = wt->batch.flight;
    size_t n = 0;

    for (size_t i = 0; i < wt->batch.n_items; i++)
        n += wt->batch.items[i].local != NULL && wt->batch.items[i].decoded;
    if (!n)
        return;
    f->held = calloc(n, sizeof(*f->held));
    BT_ASSERT(f->held);
    for (size_t i = 0; i < wt->batch.n_items; i++) {
        const struct wf_item *it = &wt->batch.items[i];
        struct bt_command *cmd;
        char *id;
        int rc;
        if (!it->local || !it->decoded ||
            (it->msg.type != BT_MSG_COMPLETED && it->msg.type != BT_MSG_FAILED))
            continue;
        cmd = calloc(1, sizeof(*cmd));
        id = strdup(it->local->id);
        BT_ASSERT(cmd && id);
        cmd->field = bt_task_field(it->msg.seq, it->msg.attempt);
        rc = cmd->field ? bt_command_hold(&cmd->field, wt->worker) : BT_ENOMEM;
        BT_ASSERT(rc == 0);
        f->held[f->n_held++] = (struct bt_delivered){id, cmd, 1};
    }
}

void wf_take_off(struct bt_wftask *wt, bool abandoned)
{
    struct wf_flight *f = wt->batch.flight;

    f->offsets =
        abandoned ? rd_kafka_topic_partition_list_new(1) : wf_batch_offsets(&wt->batch);
    if (!abandoned)
        note_held(wt);
    *wt->landing = f;
    wt->landing = &f->next;
    wt->n_flights++;
    wt->batch.flight = NULL;
}
