/* A task's record in the activity role: see job.h. */
#include <stdlib.h>

#include "job.h"

void bt_job_free(struct job *job)
{
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
