/* The activity role. The consumer thread reads tasks (offsets.c tracks what
 * is done of each partition), gets them their concurrency slot and rate-limit
 * token (admission.c), drops stale ones (the step is done or a later attempt
 * exists: take_task.lua, one call per batch) and queues the rest; activity
 * threads run them and produce the completion events, and the consumer
 * thread releases each task's offset once its event is delivered. Attempts
 * finish out of order, so each partition's offset is committed only up to
 * its oldest task whose event is not delivered yet. Eager tasks, submitted by
 * this worker's workflow role, take the same way without Kafka. Producing
 * the outcomes is in actproduce.c, the eager submissions in acteager.c. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "clock.h"
#include "activity.h"
#include "codec.h"
#include "err.h"
#include "failpoint.h"
#include "fatal.h"
#include "health.h"
#include "idmap.h"
#include "jsonw.h"
#include "kafka.h"
#include "log.h"
#include "stop.h"
#include "lua_scripts.h"
#include "actpool.h"
#include "admission.h"
#include "job.h"
#include "offsets.h"
#include "partlease.h"
#include "store.h"
#include "watchdog.h"
#include "acttask_int.h"

void act_count(struct bt_acttask *at, uint64_t *field)
{
    pthread_mutex_lock(&at->lock);
    (*field)++;
    pthread_mutex_unlock(&at->lock);
}

/* ---- metrics ---- */

static const double latency_bounds[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                        1,     2.5,   5,    10,    30,   60,  300};

static void register_metrics(struct bt_acttask *at, struct bt_metrics *m)
{
    size_t n_bounds = sizeof(latency_bounds) / sizeof(latency_bounds[0]);

    at->m.attempts = bt_metrics_counter(
        m, "baton_activity_attempts_total",
        "Activity tasks by outcome: completed or failed when run, stale when skipped.",
        "activity,outcome");
    at->m.retries = bt_metrics_counter(m, "baton_activity_retries_total",
                                       "Attempts run after the first.", "activity");
    at->m.duration = bt_metrics_histogram(m, "baton_activity_duration_seconds",
                                          "Run time of activity attempts.", "activity",
                                          latency_bounds, n_bounds);
    at->m.wait =
        bt_metrics_histogram(m, "baton_activity_schedule_to_start_seconds",
                             "From the task's scheduling to the start of its attempt.",
                             "activity", latency_bounds, n_bounds);
    at->m.dead = bt_metrics_dead_letters(m, "activity");
    at->m.round_trips = bt_metrics_round_trips(m, "activity");
    at->m.lag = bt_metrics_lag_series(m, "activity");
    at->m.untaken = bt_metrics_series(bt_metrics_gauge(
        m, "baton_activity_tasks_untaken",
        "Tasks fetched that wait until the threads would start them in time.", NULL));
    at->m.overdue = bt_metrics_series(bt_metrics_gauge(
        m, "baton_activity_threads_overdue",
        "Activity threads still running an attempt 10 s past its timeout.", NULL));
}

/* An activity still running well past its start-to-close timeout (it ignores
 * it, or hangs): the attempt was retried meanwhile, its thread stays taken. */
#define OVERDUE_GRACE_MS 10000

/* Once a second: the threads held by overdue attempts, on /metrics; when
 * they are all held, the worker can run no activity any more and says so on
 * /healthz, for a liveness probe to restart it. */
static void watch_overdue(struct bt_acttask *at, int64_t now)
{
    int n = bt_actpool_overdue(at->pool, now, OVERDUE_GRACE_MS);

    bt_metrics_set(at->m.overdue, n);
    bt_health_stuck(n > 0 && n == bt_actpool_threads(at->pool)
                        ? "every activity thread runs an attempt past its timeout"
                        : NULL);
}

/* The activity label: its name when registered (def not NULL), since task
 * names come from Kafka and must not grow the label set without bound. */
static const char *activity_label(const struct bt_activity_def *def, const char *name)
{
    return def ? name : "(unregistered)";
}

static void count_attempt(struct bt_acttask *at, const struct bt_activity_def *def,
                          const char *name, const char *outcome)
{
    bt_metrics_add(bt_metrics_series(at->m.attempts, activity_label(def, name), outcome),
                   1);
}

static double mono_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Consumer thread: the Redis and Kafka figures of its own connections. */
static void export_metrics(struct bt_acttask *at)
{
    int64_t now = bt_clock_now_ms();

    bt_metrics_set(at->m.round_trips,
                   (int64_t)bt_redis_round_trips(bt_store_redis(at->store)));
    bt_metrics_set(at->m.untaken, at->pace.n);
    if (now - at->m.lag_at >= 1000) {
        if (at->m.lag)
            bt_metrics_set(at->m.lag, bt_metrics_consumer_lag(at->consumer));
        watch_overdue(at, now);
        at->m.lag_at = now;
    }
}

/* ---- offsets (consumer thread) ---- */

static void track(struct bt_acttask *at, struct job *job)
{
    job->generation = bt_offsets_track(at->offsets, rd_kafka_topic_name(job->rkm->rkt),
                                       job->rkm->partition, job->rkm->offset);
}

static void release(struct bt_acttask *at, const struct job *job)
{
    if (job->rkm) /* submitted here: no offset */
        bt_offsets_done(at->offsets, rd_kafka_topic_name(job->rkm->rkt),
                        job->rkm->partition, job->rkm->offset, job->generation);
}

static void commit_offsets(struct bt_acttask *at)
{
    rd_kafka_topic_partition_list_t *offsets = bt_offsets_take(at->offsets);
    rd_kafka_resp_err_t err;

    if (!offsets)
        return;
    if ((err = rd_kafka_commit(at->consumer, offsets, 1)))
        bt_log(BT_LOG_WARN, "cannot commit task offsets: %s", rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(offsets);
}

/* Drops the tasks of revoked partitions not started yet (queued for a
 * thread, waiting for a slot or a token, or for room): their new owner runs them, and
 * running them here too would run them twice at once. Their offsets are not
 * committed (a new generation already). */
static void drop_waiting(struct bt_acttask *at,
                         const rd_kafka_topic_partition_list_t *parts)
{
    /* at->adm is gone when the consumer's close revokes everything */
    struct job *dropped = bt_actpool_drop_queued(at->pool, parts),
               *admitting = at->adm ? bt_admission_drop_revoked(at->adm, parts) : NULL,
               *paced = bt_pace_drop_revoked(&at->pace, parts), **tail = &dropped;
    int n = 0;

    while (*tail)
        tail = &(*tail)->next;
    *tail = admitting;
    while (*tail)
        tail = &(*tail)->next;
    *tail = paced;
    for (struct job *job = dropped; job; job = job->next)
        n++;
    if (n)
        bt_log(BT_LOG_INFO, "revoked: %d waiting tasks left to the new owner", n);
    while (dropped) {
        struct job *job = dropped;
        dropped = job->next;
        bt_admission_unlease(at->adm, job);
        act_unhold(at, job, false);
        bt_job_free(job);
    }
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct bt_acttask *at = opaque;

    bt_redelivered_forget(&at->redelivered, parts); /* they change hands */
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        bt_log(BT_LOG_INFO, "task partitions assigned: count=%d", parts->cnt);
        bt_kafka_assign(rk, parts);
        /* librdkafka keeps a partition's pause across assignments: one paused
         * before a revoke and given back after the buffer drained would
         * never fetch again (a worker that silently stopped) */
        if (at->paused)
            rd_kafka_pause_partitions(rk, parts);
        else
            rd_kafka_resume_partitions(rk, parts);
        return;
    }
    commit_offsets(at);
    bt_offsets_forget(at->offsets, parts);
    drop_waiting(at, parts);
    bt_kafka_unassign(rk, parts);
}

/* ---- activity threads ---- */

/* Its start-to-close timeout has passed: the timer fires (or fired) and the
 * workflow moves on without this attempt. A task from Kafka: the timeout
 * restarted when it was taken; an eager one: when it was decided. */
static bool expired(const struct job *job)
{
    int64_t due = bt_job_due_ms(job);

    return due > 0 && bt_clock_now_ms() > due;
}

/* Runs one job on an activity thread and queues its outcome for Kafka.
 * Returns true when nothing is left to do for it (the pool frees it); else
 * the consumer thread releases its lease and offset once its outcome, if
 * any, is delivered. */
static bool run_job(void *arg, struct job *job)
{
    struct bt_acttask *at = arg;
    const struct bt_activity_def *def = bt_registry_activity(at->reg, job->task.name);
    const char *label = activity_label(def, job->task.name);
    struct bt_msg event;
    int64_t waited_ms;
    double t0;
    bool done;

    act_count(at, &at->stats.started);
    if (expired(job)) {
        /* its timeout fired while it waited here: the workflow has given up
         * on this attempt (a retry is on its way), running it would only
         * repeat its effects */
        bt_log(BT_LOG_DEBUG, "expired task skipped: workflow=%s seq=%lld attempt=%d",
               job->task.id, (long long)job->task.seq, job->task.attempt);
        count_attempt(at, def, job->task.name, "stale");
        return job->direct;
    }
    waited_ms = bt_clock_now_ms() - job->task.ts; /* two hosts' clocks: may be < 0 */
    if (job->task.ts > 0)
        bt_metrics_observe(bt_metrics_series(at->m.wait, label),
                           (double)(waited_ms > 0 ? waited_ms : 0) / 1000.0);
    if (job->task.attempt > 1)
        bt_metrics_add(bt_metrics_series(at->m.retries, label), 1);
    if (!job->rkm && bt_failpoint("exit-in-eager-task")) {
        bt_log(BT_LOG_WARN, "failpoint exit-in-eager-task: exiting");
        _exit(9);
    }
    t0 = mono_s();
    if (job->lost) {
        bt_activity_lost(&job->task, at->worker, &event);
    } else {
        bt_fatal_enter(&(struct bt_fatal_site){"activity", job->task.id, job->task.name,
                                               (long long)job->task.seq,
                                               job->task.attempt});
        bt_activity_execute(def, &job->task, at->worker, &event);
        bt_fatal_leave();
    }
    t0 = mono_s() - t0;
    bt_metrics_observe(bt_metrics_series(at->m.duration, label), t0);
    bt_pace_note(&at->pace, (int64_t)(t0 * 1e6));
    /* first: a result over the limit turns the outcome into a failure */
    job->event = bt_activity_encode(&event, at->cfg->max_payload, &job->event_len);
    BT_ASSERT(job->event);
    count_attempt(at, def, job->task.name,
                  event.type == BT_MSG_COMPLETED ? "completed" : "failed");
    if (event.type == BT_MSG_FAILED && event.error.retry_after_ms > 0)
        job->throttle_ms = event.error.retry_after_ms;
    /* a direct job handed to the workflow role leaves the consumer thread
     * nothing to do (no offset, lease, throttle hold nor report) */
    done = act_produce_event(at, job) && job->direct;
    act_count(at,
              event.type == BT_MSG_COMPLETED ? &at->stats.completed : &at->stats.failed);
    bt_msg_release(&event);
    return done;
}

/* ---- consumer thread ---- */

/* True when take_task.lua's reply for a task says its attempt is no longer
 * wanted.
 * Redis unreachable: run it; at-least-once is the contract. */
static bool stale(const redisReply *reply)
{
    return reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 0;
}

/* True when the reply says the processes that took the attempt before died
 * or lost it unfinished, too often to run it again (take_task.lua). */
static bool lost(const redisReply *reply)
{
    return reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 2;
}

/* ---- one copy of an attempt (consumer thread) ---- */

/* Whether job is the only copy of its attempt here (1). A second copy (Kafka
 * delivered it again after a rebalance gave its partition back while the
 * first still waited, ran or reported) is not run: it becomes the first's
 * twin, and its offset is released with the first's (0). One whose outcome
 * this worker sent already (the workflow role had not applied it when the
 * copy came) is skipped (-1). */
static int hold(struct bt_acttask *at, struct job *job)
{
    char key[BT_JOB_KEY_SIZE];
    struct job *first;

    if (!job->rkm) /* eager: decided here a moment ago, never on Kafka */
        return 1;
    bt_job_attempt_key(job, key, sizeof(key));
    if (bt_recent_has(at->sent, key)) {
        bt_log(BT_LOG_INFO,
               "attempt already run here and its outcome sent, not run twice: "
               "workflow=%s seq=%lld attempt=%d",
               job->task.id, (long long)job->task.seq, job->task.attempt);
        act_count(at, &at->stats.twins);
        return -1;
    }
    if ((first = bt_idmap_get(at->held, key))) {
        bt_log(BT_LOG_INFO,
               "attempt already held here, not run twice: workflow=%s seq=%lld "
               "attempt=%d",
               job->task.id, (long long)job->task.seq, job->task.attempt);
        act_count(at, &at->stats.twins);
        job->twin = first->twin;
        first->twin = job;
        return 0;
    }
    BT_ASSERT(bt_idmap_put(at->held, key, job) == 0);
    job->held = true;
    return 1;
}

void act_unhold(struct bt_acttask *at, struct job *job, bool sent)
{
    char key[BT_JOB_KEY_SIZE];

    if (job->held || sent)
        bt_job_attempt_key(job, key, sizeof(key));
    if (job->held) {
        bt_idmap_del(at->held, key);
        job->held = false;
    }
    if (sent)
        bt_recent_add(at->sent, key);
    for (struct job *twin = job->twin; twin; twin = twin->twin)
        release(at, twin);
    release(at, job);
}

static void skip(struct bt_acttask *at, struct job *job)
{
    bt_job_set_waiting(job, NULL);
    bt_admission_unlease(at->adm, job);
    act_unhold(at, job, false);
    bt_job_free(job);
}

#define TAKE_MAX 128 /* tasks per take_task.lua call */

/* Appends one take_task.lua call for jobs[0..n) (n <= TAKE_MAX, all of one
 * shard: store.h). Returns 0 or BT_ENOMEM. */
static int append_take(struct bt_acttask *at, struct job *const *jobs, size_t n)
{
    struct texts {
        char journal[600], meta[600], seq[BT_JW_INT_SIZE], attempt[BT_JW_INT_SIZE],
            due[BT_JW_INT_SIZE];
        char *member;
    } *t = calloc(n, sizeof(*t));
    /* KEYS: timers, then journal and meta per job; ARGV: 5 per job */
    const char *argv[1 + 7 * TAKE_MAX];
    char timers[300], kp[BT_STORE_KP_SIZE];
    int ret = t ? 0 : BT_ENOMEM;

    snprintf(timers, sizeof(timers), "%s:timers",
             bt_store_kp_of(at->store, jobs[0]->task.id, kp, sizeof(kp)));
    argv[0] = timers;
    for (size_t i = 0; i < n && ret == 0; i++) {
        const struct bt_msg *task = &jobs[i]->task;
        /* the timeout restarts at pickup: as long as it was at dispatch */
        int64_t timeout = act_timeout_ms(task);
        int64_t due = timeout > 0 ? bt_clock_now_ms() + timeout : task->deadline;
        jobs[i]->due_ms = due;
        bt_store_key(at->store, task->id, ":journal", t[i].journal, sizeof(t[i].journal));
        bt_store_key(at->store, task->id, "", t[i].meta, sizeof(t[i].meta));
        bt_jw_itoa(t[i].seq, task->seq);
        bt_jw_itoa(t[i].attempt, task->attempt);
        bt_jw_itoa(t[i].due, due);
        if (!(t[i].member =
                  bt_timer_member("timeout", task->seq, task->attempt, task->id)))
            ret = BT_ENOMEM;
        argv[1 + 2 * i] = t[i].journal;
        argv[2 + 2 * i] = t[i].meta;
        argv[1 + 2 * n + 5 * i] = t[i].seq;
        argv[2 + 2 * n + 5 * i] = t[i].attempt;
        argv[3 + 2 * n + 5 * i] = t[i].member;
        argv[4 + 2 * n + 5 * i] = t[i].due;
        /* marked only when another worker may have taken it before */
        argv[5 + 2 * n + 5 * i] = jobs[i]->maybe_taken && at->taker ? at->taker : "";
    }
    if (ret == 0)
        ret = bt_redis_append_eval(bt_store_redis(at->store), bt_lua_take_task,
                                   (int)(1 + 2 * n), (int)(1 + 7 * n), argv, NULL);
    for (size_t i = 0; t && i < n; i++)
        free(t[i].member);
    free(t);
    return ret;
}

void act_enqueue(struct bt_acttask *at, struct job *job)
{
    bt_job_set_waiting(job, NULL);
    bt_actpool_enqueue(at->pool, job);
}

/* True when job's attempt is checked against the journal: an eager task was
 * decided by this process a moment ago, so nothing can have made it stale
 * yet, and its timeout started just now. */
static bool to_check(const struct job *job)
{
    return job && !job->local;
}

/* Checks the journal entries of jobs that hold a token (NULL entries are
 * skipped), TAKE_MAX per take_task.lua call, all in one round trip, and
 * queues what is still wanted. The check comes after the token, as it
 * restarts the attempt's timeout: time spent waiting for a token does not
 * count against it. */
static void check(struct bt_acttask *at, struct job **jobs, size_t n)
{
    /* jobs[first, end) hold the tasks of one call; replies come in order */
    struct group {
        size_t first, end;
        bool sent;
    } *groups = calloc(n + 1, sizeof(*groups)); /* shards may split them */
    struct bt_redis *r = bt_store_redis(at->store);
    size_t n_groups = 0, i = 0;

    BT_ASSERT(groups);
    while (i < n) {
        struct job *ask[TAKE_MAX];
        struct group *g = &groups[n_groups++];
        size_t k = 0;
        int shard = 0;
        /* one call touches one shard's keys: a group ends where it changes */
        for (g->first = i; i < n && k < TAKE_MAX; i++) {
            int s;
            if (!to_check(jobs[i]))
                continue;
            s = bt_store_shard_of(at->store, jobs[i]->task.id);
            if (k && s != shard)
                break;
            shard = s;
            ask[k++] = jobs[i];
        }
        g->end = i;
        g->sent = k && append_take(at, ask, k) == 0;
    }
    for (size_t gi = 0; gi < n_groups; gi++) {
        const struct group *g = &groups[gi];
        redisReply *reply = NULL;
        size_t e = 0;
        /* Redis unreachable: they run; at-least-once is the contract */
        if (g->sent && bt_redis_reply(r, &reply))
            reply = NULL;
        for (size_t j = g->first; j < g->end; j++) {
            struct job *job = jobs[j];
            const redisReply *el = NULL;
            if (!job)
                continue;
            if (to_check(job) && reply && reply->type == REDIS_REPLY_ARRAY &&
                e < reply->elements)
                el = reply->element[e];
            e += to_check(job);
            if (stale(el)) {
                bt_log(BT_LOG_DEBUG,
                       "stale task skipped: workflow=%s seq=%lld attempt=%d",
                       job->task.id, (long long)job->task.seq, job->task.attempt);
                act_count(at, &at->stats.stale);
                count_attempt(at, bt_registry_activity(at->reg, job->task.name),
                              job->task.name, "stale");
                skip(at, job);
            } else {
                /* a lost one runs no code: its thread reports it failed */
                job->lost = lost(el);
                act_enqueue(at, job);
            }
        }
        freeReplyObject(reply);
    }
    free(groups);
}

/* Gets jobs[0..n) (NULL entries skipped) their slot and token, then checks
 * and queues those that got them; the others wait in admission. */
static void admit(struct bt_acttask *at, struct job **jobs, size_t n)
{
    bt_admission_admit(at->adm, jobs, n);
    check(at, jobs, n);
}

bool act_fits(struct bt_acttask *at, int busy, int queued, int more, int64_t timeout_ms)
{
    return queued + more < act_buffer_max(at) &&
           bt_pace_fits(&at->pace, at->cfg->concurrency, busy, queued + more, timeout_ms);
}

int64_t act_timeout_ms(const struct bt_msg *task)
{
    return task->deadline > 0 && task->ts > 0 ? task->deadline - task->ts : 0;
}

/* Admits the fetched tasks that start in time now (pace.h), oldest first. */
static void admit_paced(struct bt_acttask *at)
{
    struct job *jobs[256];
    const struct job *first;
    int busy, queued;
    size_t n = 0;

    if (!at->pace.n)
        return;
    bt_actpool_load(at->pool, &busy, &queued, NULL);
    while (n < sizeof(jobs) / sizeof(jobs[0]) && (first = bt_pace_first(&at->pace)) &&
           act_fits(at, busy, queued, (int)n, act_timeout_ms(&first->task)))
        n += bt_pace_take(&at->pace, &jobs[n], 1);
    if (n)
        admit(at, jobs, n);
}

/* Admits again the kept tasks whose time to ask has come. */
static void admit_due(struct bt_acttask *at)
{
    struct job *due[256];
    size_t n = bt_admission_due(at->adm, due, sizeof(due) / sizeof(due[0]));

    if (n)
        admit(at, due, n);
}

/* Decodes a batch of polled and submitted tasks and admits them. */
static void take(struct bt_acttask *at, struct job **jobs, size_t n)
{
    char errstr[512];

    for (size_t i = 0; i < n; i++) {
        struct job *job = jobs[i];
        const void *bytes = job->local ? job->local : job->rkm->payload;
        size_t len = job->local ? job->local_len : job->rkm->len;
        if (job->rkm) {
            track(at, job);
            job->maybe_taken =
                bt_redelivered_maybe(&at->redelivered, at->consumer, job->rkm);
        }
        if (job->decoded) /* a submitted task, decoded by bt_acttask_submit */
            continue;
        if (bt_codec_decode(bytes, len, (size_t)at->cfg->max_payload, &job->task, errstr,
                            sizeof(errstr))) {
            if (job->rkm)
                act_dead_letter(at, job->rkm, errstr);
            else /* encoded by this worker's workflow role: a bug, not input */
                bt_log(BT_LOG_ERROR, "cannot decode a submitted task: %s", errstr);
        } else if (job->task.type != BT_MSG_TASK) {
            snprintf(errstr, sizeof(errstr),
                     "type: a %s message does not belong on a task topic",
                     bt_msg_type_name(job->task.type));
            if (job->rkm)
                act_dead_letter(at, job->rkm, errstr);
            bt_msg_release(&job->task);
        } else {
            int held = hold(at, job);
            job->decoded = true;
            if (held == 0)
                jobs[i] = NULL;
            /* from Kafka: taken when there is room (pace.h); an eager
             * task came because there was */
            if (held > 0 && to_check(job)) {
                bt_pace_wait(&at->pace, job);
                jobs[i] = NULL;
            }
            if (held >= 0)
                continue;
        }
        skip(at, job);
        jobs[i] = NULL;
    }
    admit(at, jobs, n);
    admit_paced(at);
}

/* How many tasks the role holds (queued, running, waiting for a token):
 * past it, it fetches no more from Kafka and takes no eager task. */
int act_buffer_max(const struct bt_acttask *at)
{
    return 4 * at->cfg->concurrency + 256;
}

static void *consume(void *arg)
{
    struct bt_acttask *at = arg;

    struct job *jobs[256];

    while (!atomic_load(&at->stop)) {
        size_t n = 0;
        int wait = at->sending ? 1 : 20;
        rd_kafka_message_t *rkm;
        bt_partlease_tick(at->leases);
        if (bt_admission_next_ms(at->adm) >= 0) {
            int64_t until = bt_admission_next_ms(at->adm) - bt_clock_now_ms();
            wait = until <= 0 ? 0 : until < wait ? (int)until : wait;
        }
        /* short first wait: delivery reports and due delayed jobs are served
         * between polls */
        rkm = rd_kafka_consumer_poll(at->consumer, wait);
        while (rkm) {
            if (rkm->err) {
                if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                    bt_log(BT_LOG_WARN, "task consumer error: %s",
                           rd_kafka_message_errstr(rkm));
                rd_kafka_message_destroy(rkm);
            } else {
                jobs[n] = calloc(1, sizeof(struct job));
                BT_ASSERT(jobs[n]);
                jobs[n++]->rkm = rkm;
                at->taken++;
            }
            if (n == sizeof(jobs) / sizeof(jobs[0]))
                break;
            rkm = rd_kafka_consumer_poll(at->consumer, 0);
        }
        pthread_mutex_lock(&at->lock);
        while (at->submitted && n < sizeof(jobs) / sizeof(jobs[0])) {
            jobs[n] = at->submitted;
            if (!(at->submitted = jobs[n]->next))
                at->submitted_tail = &at->submitted;
            jobs[n++]->next = NULL;
            at->n_submitted--;
        }
        pthread_mutex_unlock(&at->lock);
        if (n)
            take(at, jobs, n);
        admit_due(at);
        admit_paced(at);
        act_reap(at);
        bt_admission_flush(at->adm);
        commit_offsets(at);
        act_backpressure(at);
        export_metrics(at);
        if (bt_failpoint("stop-task-fetch"))
            act_stop_fetch_once(at);
        bt_watchdog_check(&at->watchdog, at->consumer, at->taken, at->paused);
    }
    return NULL;
}

struct bt_acttask *bt_acttask_new(const struct bt_config *cfg, const bt_registry *reg,
                                  struct bt_metrics *metrics, const char *worker_name,
                                  char *errstr, size_t errstr_size)
{
    struct bt_acttask *at = calloc(1, sizeof(*at));
    char group[300], *list = NULL, *save = NULL;
    const char *topics[64];
    char names[64][300], taker[400];
    size_t n_topics = 0;

    if (!at)
        return NULL;
    at->cfg = cfg;
    at->reg = reg;
    at->worker = strdup(worker_name);
    /* host:pid repeats when a container restarts in its pod (same host name,
     * same pid): the start time tells this process from its predecessor */
    snprintf(taker, sizeof(taker), "%s/%lld", worker_name, (long long)bt_clock_now_ms());
    at->taker = strdup(taker);
    register_metrics(at, metrics);
    at->submitted_tail = &at->submitted;
    at->offsets = bt_offsets_new();
    at->held = bt_idmap_new();
    at->sent = bt_recent_new();
    bt_watchdog_init(&at->watchdog, "activity", cfg->watchdog_ms, metrics);
    BT_ASSERT(at->offsets && at->held && at->sent);
    pthread_mutex_init(&at->lock, NULL);
    snprintf(group, sizeof(group), "%s.activities", cfg->prefix);
    list = strdup(cfg->queues);
    for (char *q = strtok_r(list, ", ", &save); q && n_topics < 64;
         q = strtok_r(NULL, ", ", &save)) {
        char suffix[300];
        snprintf(suffix, sizeof(suffix), "tasks.%s", q);
        topics[n_topics] = bt_kafka_topic(cfg, suffix, names[n_topics], sizeof(names[0]));
        at->queues[at->n_queues++] = strdup(q);
        n_topics++;
    }
    free(list);
    if (!n_topics) {
        snprintf(errstr, errstr_size, "queues: no task queue given");
        goto fail;
    }
    if (!(at->store = bt_store_new(cfg, errstr, errstr_size)) ||
        !(at->adm = bt_admission_new(cfg, reg, at->store, worker_name, metrics)) ||
        !(at->producer = bt_kafka_producer_new(cfg, errstr, errstr_size)) ||
        !(at->consumer =
              bt_kafka_consumer_new(cfg, group, rebalance_cb, at, errstr, errstr_size)))
        goto fail;
    if (bt_partlease_start(cfg, at->consumer, group, topics, n_topics, at->worker,
                           rebalance_cb, at, &at->leases, errstr, errstr_size))
        goto fail;
    at->wake = rd_kafka_queue_get_consumer(at->consumer);
    if (!(at->pool = bt_actpool_new(cfg->concurrency, run_job, at)) ||
        pthread_create(&at->consumer_thread, NULL, consume, at)) {
        snprintf(errstr, errstr_size, "cannot start threads");
        goto fail;
    }
    return at;
fail:
    bt_acttask_destroy(at);
    return NULL;
}

struct bt_acttask_stats bt_acttask_stats(struct bt_acttask *at)
{
    struct bt_acttask_stats s;

    pthread_mutex_lock(&at->lock);
    s = at->stats;
    pthread_mutex_unlock(&at->lock);
    return s;
}

void bt_acttask_destroy(struct bt_acttask *at)
{
    if (!at)
        return;
    if (at->consumer_thread) {
        bt_stop_step("activity role: consumer thread");
        atomic_store(&at->stop, true);
        pthread_join(at->consumer_thread, NULL);
    }
    bt_stop_step("activity role: running tasks");
    if (at->pool)
        bt_actpool_stop(at->pool);
    if (at->consumer) {
        /* outcomes on their way: wait for them so their offsets can be committed */
        bt_stop_step("activity role: outcomes to Kafka");
        rd_kafka_flush(at->producer, 10000);
        act_reap(at);
        commit_offsets(at);
        while (at->sending) {
            struct job *j = at->sending;
            at->sending = j->next;
            bt_job_free(j);
        }
        /* never run: redelivered, or handed to Kafka when eager */
        for (struct job *j; bt_pace_take(&at->pace, &j, 1);)
            bt_job_free(j);
        act_hand_off_unrun(at);
        bt_admission_destroy(at->adm); /* and the slots of tasks that will not run */
        at->adm = NULL;
        if (at->wake)
            rd_kafka_queue_destroy(at->wake);
        bt_stop_step("activity role: consumer close");
        bt_partlease_destroy(at->leases);
        rd_kafka_consumer_close(at->consumer);
        rd_kafka_destroy(at->consumer);
    }
    if (at->producer) {
        bt_stop_step("activity role: producer close");
        rd_kafka_flush(at->producer, 5000);
        rd_kafka_destroy(at->producer);
    }
    bt_offsets_destroy(at->offsets);
    bt_admission_destroy(at->adm);
    bt_idmap_destroy(at->held, NULL); /* its jobs are freed by now */
    bt_recent_destroy(at->sent);
    bt_store_destroy(at->store);
    bt_actpool_destroy(at->pool);
    for (size_t i = 0; i < at->n_queues; i++)
        free(at->queues[i]);
    free(at->worker);
    free(at->taker);
    bt_redelivered_release(&at->redelivered);
    pthread_mutex_destroy(&at->lock);
    free(at);
}
