/* How far ahead of its threads the activity role takes tasks (pace.h). */
#include "pace.h"

void bt_pace_note(struct bt_pace *p, int64_t us)
{
    int64_t old = atomic_load_explicit(&p->run_us, memory_order_relaxed);

    if (us < 1)
        us = 1;
    /* a pessimist's pace: up at once, down slowly (1/64 of the way per run),
     * so a streak of short runs among long ones does not let the worker take
     * more than it can start in time; a lost update between two threads
     * only drops one sample */
    if (old && us < old)
        us = old - (old - us) / 64;
    atomic_store_explicit(&p->run_us, us, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->runs, 1, memory_order_relaxed);
}

bool bt_pace_fits(const struct bt_pace *p, int threads, int busy, int ahead,
                  int64_t timeout_ms)
{
    int64_t run_us = atomic_load_explicit(&p->run_us, memory_order_relaxed);
    int64_t limit_ms = BT_PACE_AHEAD_MS;

    if (ahead < threads - busy) /* a thread is free for it */
        return true;
    /* no pace yet (the first runs may all have been short ones): only at once */
    if (atomic_load_explicit(&p->runs, memory_order_relaxed) < 4 * threads)
        return false;
    if (timeout_ms > 0 && timeout_ms / 4 < limit_ms)
        limit_ms = timeout_ms / 4;
    /* the running tasks and those ahead, shared by the threads */
    return (int64_t)(ahead + busy) * run_us / threads <= limit_ms * 1000;
}

void bt_pace_wait(struct bt_pace *p, struct job *job)
{
    bt_job_list_append(&p->head, &p->tail, job);
    p->n++;
}

struct job *bt_pace_first(const struct bt_pace *p)
{
    return p->head;
}

size_t bt_pace_take(struct bt_pace *p, struct job **out, size_t max)
{
    size_t n = 0;

    while (n < max && p->head) {
        struct job *job = p->head;
        if (!(p->head = job->next))
            p->tail = NULL;
        job->next = NULL;
        out[n++] = job;
        p->n--;
    }
    return n;
}

struct job *bt_pace_drop_revoked(struct bt_pace *p,
                                 const rd_kafka_topic_partition_list_t *parts)
{
    int n;
    struct job *dropped = bt_job_list_drop_revoked(&p->head, &p->tail, parts, &n);

    p->n -= n;
    return dropped;
}
