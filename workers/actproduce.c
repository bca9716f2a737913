/* What the activity role puts on Kafka (acttask_int.h): each attempt's
 * outcome, produced by the activity thread that ran it (or handed back to
 * this worker's workflow role, for an eager task), and the tasks it cannot
 * read, sent to the DLQ. The consumer thread reaps the delivery reports:
 * a task's offset, lease and slot go only once its outcome is on Kafka. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "codec.h"
#include "err.h"
#include "log.h"
#include "acttask_int.h"

static void produce_dead_letter(struct bt_acttask *at, const char *key, struct bt_msg *dl)
{
    char topic[512];
    size_t len;
    char *bytes;
    struct bt_kafka_batch batch = {0};

    dl->ts = bt_clock_now_ms();
    bytes = bt_codec_encode_dead_letter(dl, (size_t)at->cfg->max_payload, &len);
    bt_kafka_topic(at->cfg, "dlq", topic, sizeof(topic));
    /* the task's offset is released only once this is on Kafka: keep trying */
    for (int backoff = 50; bytes; backoff = backoff < 5000 ? backoff * 2 : backoff) {
        batch = (struct bt_kafka_batch){0};
        if (bt_kafka_produce(at->producer, topic, key, strlen(key), bytes, len, &batch) ==
                0 &&
            bt_kafka_wait(at->producer, &batch, 30000) == 0)
            break;
        if (batch.pending) /* still in flight: its report will come; do not resend yet */
            bt_kafka_wait(at->producer, &batch, -1);
        if (!batch.failed)
            break;
        bt_log(BT_LOG_WARN, "cannot deliver to %s, retrying: %s backoff_ms=%d", topic,
               rd_kafka_err2str(batch.err), backoff);
        bt_clock_sleep_ms(backoff);
        if (atomic_load(&at->stop) && backoff >= 5000)
            break;
    }
    free(bytes);
}

void act_dead_letter(struct bt_acttask *at, const rd_kafka_message_t *rkm,
                     const char *reason)
{
    struct bt_msg dl;
    char key[BT_ID_MAX + 1];

    bt_log(BT_LOG_WARN, "dead letter: %s topic=%s partition=%d offset=%lld", reason,
           rd_kafka_topic_name(rkm->rkt), rkm->partition, (long long)rkm->offset);
    snprintf(key, sizeof(key), "%.*s", rkm->key ? (int)rkm->key_len : 0,
             rkm->key ? (const char *)rkm->key : "");
    if (bt_codec_dead_letter(&dl, reason, rd_kafka_topic_name(rkm->rkt), rkm->partition,
                             rkm->offset, rkm->key, rkm->key_len, rkm->payload, rkm->len))
        return;
    produce_dead_letter(at, key, &dl);
    bt_msg_release(&dl);
    act_count(at, &at->stats.dead);
    bt_metrics_add(at->m.dead, 1);
}

/* Queues the job's outcome for Kafka; a full local queue is retried later.
 * A submitted task's outcome goes back to this worker's workflow role: then
 * returns true (nothing to wait for). */
bool act_produce_event(struct bt_acttask *at, struct job *job)
{
    char topic[512], *suffix = bt_events_suffix(job->task.wf_queue);

    if (job->local && at->deliver && suffix) {
        at->deliver(job->owner, suffix, job->task.id, job->event, job->event_len);
        job->delivery = (struct bt_kafka_batch){0};
        free(suffix);
        return true;
    }
    /* to the events topic of the workflow's queue: it may be another team's */
    bt_kafka_topic(at->cfg, suffix ? suffix : "events", topic, sizeof(topic));
    free(suffix);
    job->delivery = (struct bt_kafka_batch){0};
    if (bt_kafka_produce(at->producer, topic, job->task.id, strlen(job->task.id),
                         job->event, job->event_len, &job->delivery))
        job->delivery.failed = 1;
    return false;
}

void act_reap(struct bt_acttask *at)
{
    struct job *produced, *next, **pp;
    int released = 0;

    for (produced = bt_actpool_produced(at->pool); produced; produced = next) {
        next = produced->next;
        /* the downstream said "throttled": nobody takes this key's tokens for
         * that long (its event is already on its way; the retry waits too) */
        bt_admission_throttled(at->adm, produced);
        bt_admission_unlease(at->adm, produced);
        produced->next = at->sending;
        at->sending = produced;
    }
    rd_kafka_poll(at->producer, 0);
    for (pp = &at->sending; *pp;) {
        struct job *job = *pp;
        if (__atomic_load_n(&job->delivery.pending, __ATOMIC_ACQUIRE) > 0) {
            pp = &job->next;
            continue;
        }
        if (__atomic_load_n(&job->delivery.failed, __ATOMIC_RELAXED)) {
            bt_log(BT_LOG_WARN,
                   "activity outcome not delivered, sending again: %s "
                   "workflow=%s seq=%lld",
                   rd_kafka_err2str(job->delivery.err), job->task.id,
                   (long long)job->task.seq);
            act_produce_event(at, job);
            pp = &job->next;
            continue;
        }
        *pp = job->next;
        released++;
        act_unhold(at, job, true);
        bt_job_free(job);
    }
    if (released)
        bt_actpool_released(at->pool, released);
}
