/* Eager dispatch in the activity role (acttask_int.h): tasks this worker's
 * workflow role decided a moment ago and hands over without Kafka, how many
 * it may hand over, and, at a clean stop, the hand-off to Kafka of those
 * never run (nobody else knows of them: they are not on Kafka). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "stop.h"
#include "unsent.h"
#include "acttask_int.h"

bool bt_acttask_eager_fits(struct bt_acttask *at, const char *queue, int64_t timeout_ms,
                           int more)
{
    int submitted, busy, queued, inflight;
    size_t i;

    for (i = 0; i < at->n_queues && strcmp(at->queues[i], queue); i++)
        ;
    if (i == at->n_queues || !at->deliver)
        return false;
    pthread_mutex_lock(&at->lock);
    submitted = at->n_submitted;
    pthread_mutex_unlock(&at->lock);
    /* room in the buffer, not only idle threads: under load the threads are
     * never idle, and a task queued here costs less than two Kafka hops;
     * but only as far as the threads start it in time: an eager task's
     * timeout runs from the decision */
    bt_actpool_load(at->pool, &busy, &queued, &inflight); /* one look at the pool */
    return inflight + submitted + more < act_buffer_max(at) &&
           act_fits(at, busy, queued, submitted + more, timeout_ms);
}

void bt_acttask_submit(struct bt_acttask *at, const char *payload, size_t len,
                       void *owner)
{
    struct job *job = calloc(1, sizeof(*job));
    char errstr[512];

    BT_ASSERT(job && (job->local = malloc(len)));
    memcpy(job->local, payload, len);
    job->local_len = len;
    job->owner = owner;
    if (bt_codec_decode(payload, len, (size_t)at->cfg->max_payload, &job->task, errstr,
                        sizeof(errstr)) == 0) {
        if (job->task.type != BT_MSG_TASK)
            bt_msg_release(&job->task); /* take() (acttask.c) says what is wrong */
        else
            job->decoded = true;
    }
    /* nothing to ask Redis for (no slot, no token, and an eager task is not
     * stale): straight into the activity threads' queue, one thread hand-over less
     * than through the consumer thread */
    if (job->decoded && !job->task.concurrency_key && !job->task.rate_key) {
        job->direct = true;
        /* its timeout started at the decision, before those of the tasks
         * taken from Kafka meanwhile: it goes ahead of them (a new job
         * waits for nothing: no gauge to move) */
        bt_actpool_enqueue_eager(at->pool, job);
        return;
    }
    pthread_mutex_lock(&at->lock);
    *at->submitted_tail = job;
    at->submitted_tail = &job->next;
    at->n_submitted++;
    pthread_mutex_unlock(&at->lock);
    rd_kafka_queue_yield(at->wake); /* the consumer thread may be in a poll */
}

void bt_acttask_on_local_outcome(struct bt_acttask *at,
                                 void (*deliver)(void *owner, const char *suffix,
                                                 const char *id, const char *payload,
                                                 size_t len))
{
    at->deliver = deliver;
}

/* Hands the eager tasks of list jobs (never run) to Kafka at a clean stop,
 * then frees them (unsent.h). */
static void hand_off(struct bt_acttask *at, struct job *jobs)
{
    struct bt_handoff *h;
    size_t n = 0, i = 0;

    for (struct job *j = jobs; j; j = j->next)
        n += j->decoded;
    h = calloc(n + 1, sizeof(*h));
    BT_ASSERT(h);
    for (struct job *j = jobs; j; j = j->next) {
        char suffix[300];
        if (!j->decoded)
            continue;
        snprintf(suffix, sizeof(suffix), "tasks.%s", j->task.queue);
        h[i] = (struct bt_handoff){strdup(suffix), j->task.id,  j->local,
                                   j->local_len,   j->task.seq, j->task.attempt};
        BT_ASSERT(h[i++].suffix);
    }
    bt_unsent_hand_off(at->producer, at->cfg, at->store, at->worker, h, n);
    for (i = 0; i < n; i++)
        free((char *)(uintptr_t)h[i].suffix);
    free(h);
    while (jobs) {
        struct job *j = jobs;
        jobs = j->next;
        bt_job_free(j);
    }
}

void act_hand_off_unrun(struct bt_acttask *at)
{
    struct job *eager = NULL;
    for (struct job *j; at->pool && (j = bt_actpool_take_queued(at->pool));) {
        bt_admission_unlease(at->adm, j);
        if (j->local) {
            j->next = eager;
            eager = j;
        } else {
            bt_job_free(j);
        }
    }
    while (at->submitted) {
        struct job *j = at->submitted;
        at->submitted = j->next;
        j->next = eager;
        eager = j;
    }
    bt_stop_step("activity role: eager hand-off");
    hand_off(at, eager);
}
