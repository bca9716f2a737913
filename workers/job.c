/* A task's record in the activity role: see job.h. */
#include <stdio.h>
#include <stdlib.h>

#include "job.h"

int64_t bt_job_due_ms(const struct job *job)
{
    return job->due_ms ? job->due_ms : job->local ? job->task.deadline : 0;
}

void bt_job_free(struct job *job)
{
    while (job->twin) {
        struct job *twin = job->twin;
        job->twin = twin->twin;
        twin->twin = NULL;
        bt_job_free(twin);
    }
    if (job->decoded)
        bt_msg_release(&job->task);
    if (job->rkm)
        rd_kafka_message_destroy(job->rkm);
    free(job->local);
    free(job->event);
    free(job);
}

void bt_job_set_waiting(struct job *job, struct bt_series *s)
{
    if (job->waiting == s)
        return;
    bt_metrics_add(job->waiting, -1);
    bt_metrics_add(s, 1);
    job->waiting = s;
}

bool bt_job_revoked(const struct job *job, const rd_kafka_topic_partition_list_t *parts)
{
    return job->rkm &&
           rd_kafka_topic_partition_list_find(parts, rd_kafka_topic_name(job->rkm->rkt),
                                              job->rkm->partition);
}

void bt_job_list_append(struct job **head, struct job **tail, struct job *job)
{
    job->next = NULL;
    if (*tail)
        (*tail)->next = job;
    else
        *head = job;
    *tail = job;
}

struct job *bt_job_list_drop_revoked(struct job **head, struct job **tail,
                                     const rd_kafka_topic_partition_list_t *parts, int *n)
{
    struct job *dropped = NULL, **pp;

    *n = 0;
    *tail = NULL;
    for (pp = head; *pp;) {
        struct job *job = *pp;
        if (!bt_job_revoked(job, parts)) {
            *tail = job;
            pp = &job->next;
            continue;
        }
        *pp = job->next;
        job->next = dropped;
        dropped = job;
        ++*n;
    }
    return dropped;
}

void bt_job_attempt_key(const struct job *job, char *buf, size_t n)
{
    snprintf(buf, n, "%s|%lld|%d", job->task.id, (long long)job->task.seq,
             job->task.attempt);
}
