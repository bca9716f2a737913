/* The activity threads; see actpool.h. One mutex guards the queue, the
 * produced list and the count in flight; a condition wakes an idle thread per
 * queued job. */
#include <pthread.h>
#include <stdlib.h>

#include "actpool.h"
#include "err.h"
#include "fatal.h"
#include "log.h"

struct bt_actpool {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct job *head, *tail; /* to run */
    struct job *last_eager;  /* the last eager job queued ahead, or NULL */
    struct job *produced;    /* run, outcome on its way */
    int inflight;            /* queued + running + produced and not released */
    int queued;              /* of those: waiting for a thread */
    int busy;                /* of those: running */
    bool stop;
    struct running {
        const struct job *job; /* NULL: the thread is idle */
        int64_t due_ms;        /* its timeout (0: none) */
        bool told;             /* reported overdue */
    } * running;               /* per thread */
    int n_started;             /* threads that took their running slot */
    pthread_t *threads;
    int n_threads;
    bool (*run)(void *ctx, struct job *job);
    void *ctx;
};

static void *work(void *arg)
{
    struct bt_actpool *p = arg;
    struct running *me;

    bt_fatal_thread_init(); /* a stack overflow in an activity is caught too */
    pthread_mutex_lock(&p->lock);
    me = &p->running[p->n_started++];
    pthread_mutex_unlock(&p->lock);
    for (;;) {
        struct job *job;
        pthread_mutex_lock(&p->lock);
        while (!p->head && !p->stop)
            pthread_cond_wait(&p->cond, &p->lock);
        if (!p->head) {
            pthread_mutex_unlock(&p->lock);
            bt_fatal_thread_done();
            return NULL;
        }
        job = p->head;
        if (!(p->head = job->next))
            p->tail = NULL;
        if (job == p->last_eager)
            p->last_eager = NULL;
        job->next = NULL;
        p->queued--;
        p->busy++;
        *me = (struct running){job, bt_job_due_ms(job), false};
        pthread_mutex_unlock(&p->lock);

        bool done = p->run(p->ctx, job);
        pthread_mutex_lock(&p->lock);
        me->job = NULL;
        p->busy--;
        if (done) {
            p->inflight--;
        } else {
            job->next = p->produced;
            p->produced = job;
        }
        pthread_mutex_unlock(&p->lock);
        if (done)
            bt_job_free(job);
    }
}

struct bt_actpool *bt_actpool_new(int n, bool (*run)(void *ctx, struct job *job),
                                  void *ctx)
{
    struct bt_actpool *p = calloc(1, sizeof(*p));

    if (!p || !(p->threads = calloc((size_t)n, sizeof(*p->threads))) ||
        !(p->running = calloc((size_t)n, sizeof(*p->running)))) {
        if (p)
            free(p->threads);
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    p->run = run;
    p->ctx = ctx;
    for (int i = 0; i < n; i++)
        if (pthread_create(&p->threads[p->n_threads], NULL, work, p) == 0)
            p->n_threads++;
    if (!p->n_threads) {
        bt_actpool_destroy(p);
        return NULL;
    }
    return p;
}

void bt_actpool_stop(struct bt_actpool *p)
{
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    p->n_threads = 0;
}

void bt_actpool_destroy(struct bt_actpool *p)
{
    struct job *job;

    if (!p)
        return;
    bt_actpool_stop(p);
    while ((job = bt_actpool_take_queued(p)))
        bt_job_free(job);
    while ((job = p->produced)) {
        p->produced = job->next;
        bt_job_free(job);
    }
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    free(p->threads);
    free(p->running);
    free(p);
}

int bt_actpool_threads(const struct bt_actpool *p)
{
    return p->n_threads;
}

void bt_actpool_enqueue(struct bt_actpool *p, struct job *job)
{
    pthread_mutex_lock(&p->lock);
    bt_job_list_append(&p->head, &p->tail, job);
    p->inflight++;
    p->queued++;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

void bt_actpool_enqueue_eager(struct bt_actpool *p, struct job *job)
{
    struct job **pp;

    pthread_mutex_lock(&p->lock);
    pp = p->last_eager ? &p->last_eager->next : &p->head;
    job->next = *pp;
    *pp = job;
    p->last_eager = job;
    if (!job->next)
        p->tail = job;
    p->inflight++;
    p->queued++;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

struct job *bt_actpool_produced(struct bt_actpool *p)
{
    struct job *list;

    pthread_mutex_lock(&p->lock);
    list = p->produced;
    p->produced = NULL;
    pthread_mutex_unlock(&p->lock);
    return list;
}

void bt_actpool_released(struct bt_actpool *p, int n)
{
    pthread_mutex_lock(&p->lock);
    p->inflight -= n;
    pthread_mutex_unlock(&p->lock);
}

int bt_actpool_inflight(struct bt_actpool *p)
{
    int n;

    pthread_mutex_lock(&p->lock);
    n = p->inflight;
    pthread_mutex_unlock(&p->lock);
    return n;
}

void bt_actpool_load(struct bt_actpool *p, int *busy, int *queued, int *inflight)
{
    pthread_mutex_lock(&p->lock);
    *busy = p->busy;
    *queued = p->queued;
    if (inflight)
        *inflight = p->inflight;
    pthread_mutex_unlock(&p->lock);
}

struct job *bt_actpool_drop_queued(struct bt_actpool *p,
                                   const rd_kafka_topic_partition_list_t *parts)
{
    struct job *dropped;
    int n;

    pthread_mutex_lock(&p->lock);
    dropped = bt_job_list_drop_revoked(&p->head, &p->tail, parts, &n);
    p->inflight -= n;
    p->queued -= n;
    pthread_mutex_unlock(&p->lock);
    return dropped;
}

struct job *bt_actpool_take_queued(struct bt_actpool *p)
{
    struct job *job;

    pthread_mutex_lock(&p->lock);
    if ((job = p->head)) {
        if (!(p->head = job->next))
            p->tail = NULL;
        if (job == p->last_eager)
            p->last_eager = NULL;
        job->next = NULL;
        p->inflight--;
        p->queued--;
    }
    pthread_mutex_unlock(&p->lock);
    return job;
}

int bt_actpool_overdue(struct bt_actpool *p, int64_t now_ms, int64_t grace_ms)
{
    int n = 0;

    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < p->n_started; i++) {
        struct running *r = &p->running[i];
        if (!r->job || r->due_ms <= 0 || now_ms <= r->due_ms + grace_ms)
            continue;
        n++;
        if (!r->told)
            bt_log(BT_LOG_ERROR,
                   "activity still running past its timeout, its thread held: "
                   "workflow=%s activity=%s seq=%lld attempt=%d late_ms=%lld",
                   r->job->task.id, r->job->task.name, (long long)r->job->task.seq,
                   r->job->task.attempt, (long long)(now_ms - r->due_ms));
        r->told = true;
    }
    pthread_mutex_unlock(&p->lock);
    return n;
}
