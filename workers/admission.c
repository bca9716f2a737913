/* Admission of activity tasks: concurrency slots, then rate-limit tokens;
 * see admission.h. A full concurrency key only knows when its earliest lease
 * would expire; its slots are usually freed sooner, by a release nobody is
 * told about, so its asker asks again after a backoff of 25 ms doubling to
 * 1 s (or at that expiry, if sooner): a freed slot is taken within a second.
 * A bucket says when it will have a token, so its asker asks exactly then.
 * The slot is taken before the token, so a task never holds a token while it
 * waits for a slot (the tokens' timing would then no longer be the starts'). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admission.h"
#include "clock.h"
#include "concurrency.h"
#include "err.h"
#include "log.h"
#include "ratelimit.h"

/* The tasks of one key waiting behind the one that asks for its token or
 * slot. */
struct keyline {
    struct keyline *next;
    char *key;
    struct job *asker;        /* the task that asks, or NULL */
    struct job *head, **tail; /* the others, in arrival order */
};

/* A lease to give back, queued until the pipeline is free. */
struct release {
    struct release *next;
    char *key, *holder;
};

struct bt_admission {
    const struct bt_config *cfg;
    const bt_registry *reg;
    struct bt_store *store;
    char *worker;
    struct job *delayed;       /* waiting to ask again, by ready_ms */
    int n_delayed;             /* delayed or in a line */
    struct keyline *lines;     /* per rate key */
    struct keyline *cc_lines;  /* per concurrency key */
    struct job *leased;        /* jobs holding a lease */
    struct release *releases;  /* leases to give back */
    int64_t renew_at;          /* next renewal (monotonic ms) */
    unsigned long long leases; /* lease ids handed out */
    struct {
        struct bt_metric *rl_tokens, *rl_waiting, *rl_wait, *rl_throttles;
        struct bt_metric *cc_in_use, *cc_waiting;
    } m;
};

static const double wait_bounds[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                     1,     2.5,   5,    10,    30,   60,  300};

struct bt_metric *bt_admission_rate_waiting(struct bt_metrics *m)
{
    return bt_metrics_gauge(m, "baton_ratelimit_waiting",
                            "Tasks here waiting for a token of the key.", "key");
}

struct bt_admission *bt_admission_new(const struct bt_config *cfg, const bt_registry *reg,
                                      struct bt_store *store, const char *worker,
                                      struct bt_metrics *m)
{
    struct bt_admission *adm = calloc(1, sizeof(*adm));
    size_t n_bounds = sizeof(wait_bounds) / sizeof(wait_bounds[0]);

    if (!adm || !(adm->worker = strdup(worker))) {
        free(adm);
        return NULL;
    }
    adm->cfg = cfg;
    adm->reg = reg;
    adm->store = store;
    adm->m.rl_tokens = bt_metrics_gauge(
        m, "baton_ratelimit_tokens",
        "Whole tokens left in the key's bucket at this worker's last take.", "key");
    adm->m.rl_waiting = bt_admission_rate_waiting(m);
    adm->m.rl_wait = bt_metrics_histogram(
        m, "baton_ratelimit_wait_seconds",
        "From a task's first ask for a token of the key to the token.", "key",
        wait_bounds, n_bounds);
    adm->m.rl_throttles = bt_metrics_counter(
        m, "baton_ratelimit_throttles_total",
        "Attempts that reported throttled, holding the key's bucket.", "key");
    adm->m.cc_in_use = bt_metrics_gauge(
        m, "baton_concurrency_in_use",
        "Leases on the concurrency key held by this worker (waiting or running).", "key");
    adm->m.cc_waiting =
        bt_metrics_gauge(m, "baton_concurrency_waiting",
                         "Tasks here waiting for a slot of the concurrency key.", "key");
    return adm;
}

static void flush_releases(struct bt_admission *adm);
static void renew_leases(struct bt_admission *adm);

/* Frees a kept job, its lease queued for release. */
static void drop(struct bt_admission *adm, struct job *job)
{
    bt_job_set_waiting(job, NULL);
    bt_admission_unlease(adm, job);
    bt_job_free(job);
}

void bt_admission_destroy(struct bt_admission *adm)
{
    if (!adm)
        return;
    while (adm->delayed) {
        struct job *j = adm->delayed;
        adm->delayed = j->next;
        drop(adm, j);
    }
    while (adm->lines || adm->cc_lines) {
        struct keyline **lines = adm->lines ? &adm->lines : &adm->cc_lines;
        struct keyline *line = *lines;
        *lines = line->next;
        while (line->head) {
            struct job *j = line->head;
            line->head = j->next;
            drop(adm, j);
        }
        free(line->key);
        free(line);
    }
    flush_releases(adm); /* the slots of tasks that will not run here */
    free(adm->worker);
    free(adm);
}

void bt_admission_throttled(struct bt_admission *adm, const struct job *job)
{
    if (job->throttle_ms <= 0 || !job->task.rate_key)
        return;
    if (bt_ratelimit_throttle(bt_store_redis(adm->store), bt_store_prefix(adm->store),
                              job->task.rate_key, job->throttle_ms))
        bt_log(BT_LOG_WARN, "cannot hold rate limit key %s after a throttle",
               job->task.rate_key);
    bt_metrics_add(bt_metrics_series(adm->m.rl_throttles, job->task.rate_key), 1);
}

void bt_admission_flush(struct bt_admission *adm)
{
    flush_releases(adm);
    renew_leases(adm);
}

/* ---- leases ---- */

/* Queues the release of job's lease, if it holds one. */
void bt_admission_unlease(struct bt_admission *adm, struct job *job)
{
    struct job **pp = &adm->leased;
    struct release *rel;

    if (!job->leased)
        return;
    job->leased = false;
    while (*pp && *pp != job)
        pp = &(*pp)->lease_next;
    if (*pp)
        *pp = job->lease_next;
    rel = malloc(sizeof(*rel));
    BT_ASSERT(rel);
    rel->key = strdup(job->task.concurrency_key);
    rel->holder = strdup(job->lease_id);
    BT_ASSERT(rel->key && rel->holder);
    rel->next = adm->releases;
    adm->releases = rel;
    bt_metrics_add(bt_metrics_series(adm->m.cc_in_use, job->task.concurrency_key), -1);
}

/* Gives the queued leases back in one round trip. Redis unreachable: they
 * expire on their own, a lease later. */
static void flush_releases(struct bt_admission *adm)
{
    struct bt_redis *r = bt_store_redis(adm->store);
    const char *prefix = bt_store_prefix(adm->store);
    struct release *rel, *next;
    size_t asked = 0;

    for (rel = adm->releases; rel; rel = rel->next)
        asked += bt_concurrency_append_release(r, prefix, rel->key, rel->holder) == 0;
    while (asked--) {
        redisReply *reply = NULL;
        if (bt_redis_reply(r, &reply))
            bt_log(BT_LOG_DEBUG, "cannot release concurrency leases: they will expire");
        freeReplyObject(reply);
    }
    for (rel = adm->releases; rel; rel = next) {
        next = rel->next;
        free(rel->key);
        free(rel->holder);
        free(rel);
    }
    adm->releases = NULL;
}

/* Every third of a lease, extends every lease held here in one round trip. */
static void renew_leases(struct bt_admission *adm)
{
    struct bt_redis *r = bt_store_redis(adm->store);
    const char *prefix = bt_store_prefix(adm->store);
    int64_t now = bt_clock_mono_ms(), lease = adm->cfg->concurrency_lease_ms;

    if (!adm->leased || now < adm->renew_at)
        return;
    adm->renew_at = now + lease / 3;
    for (struct job *job = adm->leased; job; job = job->lease_next)
        job->asked = bt_concurrency_append_renew(r, prefix, job->task.concurrency_key,
                                                 job->lease_id, lease) == 0;
    for (struct job *job = adm->leased; job; job = job->lease_next) {
        redisReply *reply = NULL;
        if (!job->asked)
            continue;
        job->asked = false;
        if (bt_redis_reply(r, &reply)) {
            reply = NULL;
            adm->renew_at = now + 100; /* try again soon: the leases run out */
        }
        if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 0)
            bt_log(BT_LOG_WARN,
                   "concurrency lease lost, the limit may be exceeded: key=%s "
                   "workflow=%s seq=%lld",
                   job->task.concurrency_key, job->task.id, (long long)job->task.seq);
        freeReplyObject(reply);
    }
}

/* ---- waiting ---- */

/* Puts job in the delay list, ordered by ready_ms. */
static void delay(struct bt_admission *adm, struct job *job, int64_t wait_ms)
{
    struct job **pp = &adm->delayed;

    job->ready_ms = bt_clock_now_ms() + wait_ms;
    while (*pp && (*pp)->ready_ms <= job->ready_ms)
        pp = &(*pp)->next;
    job->next = *pp;
    *pp = job;
    adm->n_delayed++;
}

/* key's line, made when it is new. Out of memory aborts: the task is taken
 * and has nowhere else to wait (CONTRIBUTING.md, "Out of memory"). */
static struct keyline *keyline_get(struct keyline **lines, const char *key)
{
    struct keyline *line;

    for (line = *lines; line; line = line->next)
        if (!strcmp(line->key, key))
            return line;
    line = calloc(1, sizeof(*line));
    BT_ASSERT(line && (line->key = strdup(key)));
    line->tail = &line->head;
    line->next = *lines;
    *lines = line;
    return line;
}

/* Whether job must wait in key's line behind another asker (then it is
 * queued there); else it is the asker now. */
static bool wait_in_line(struct bt_admission *adm, struct keyline **lines,
                         const char *key, struct job *job)
{
    struct keyline *line = keyline_get(lines, key);

    if (!line->asker || line->asker == job) {
        line->asker = job;
        return false;
    }
    job->next = NULL;
    *line->tail = job;
    line->tail = &job->next;
    adm->n_delayed++;
    return true;
}

/* The asker of key is served (or could not ask): the next in line asks now. */
static void next_asker(struct bt_admission *adm, struct keyline **lines, const char *key)
{
    struct keyline *line = keyline_get(lines, key);
    struct job *job = line->head;

    line->asker = job;
    if (!job)
        return;
    if (!(line->head = job->next))
        line->tail = &line->head;
    adm->n_delayed--;
    delay(adm, job, 0);
}

/* Acquires a lease for each job with a concurrency key that has none yet (one
 * pipelined call for all) and delays those that got no slot, removing them
 * from jobs[] (which may hold NULLs). */
static void acquire_slots(struct bt_admission *adm, struct job **jobs, size_t n)
{
    struct bt_redis *r = bt_store_redis(adm->store);
    const char *prefix = bt_store_prefix(adm->store);
    size_t asked = 0;

    for (size_t i = 0; i < n; i++) {
        struct job *job = jobs[i];
        const struct bt_activity_def *def;
        if (!job || job->slotted || !job->task.concurrency_key)
            continue;
        if (wait_in_line(adm, &adm->cc_lines, job->task.concurrency_key, job)) {
            bt_job_set_waiting(
                job, bt_metrics_series(adm->m.cc_waiting, job->task.concurrency_key));
            jobs[i] = NULL;
            continue;
        }
        def = bt_registry_activity(adm->reg, job->task.name);
        if (!job->lease_id[0])
            snprintf(job->lease_id, sizeof(job->lease_id), "%s|%llu|%s|%lld|%d",
                     adm->worker, ++adm->leases, job->task.id, (long long)job->task.seq,
                     job->task.attempt);
        job->asked = bt_concurrency_append_acquire(r, prefix, job->task.concurrency_key,
                                                   def ? def->defaults.concurrency : 0,
                                                   job->lease_id,
                                                   adm->cfg->concurrency_lease_ms) == 0;
        asked += job->asked;
    }
    for (size_t i = 0; i < n; i++) {
        struct job *job = jobs[i];
        redisReply *reply = NULL;
        int64_t wait_ms;
        if (!job || job->slotted || !job->task.concurrency_key)
            continue;
        if (!job->asked) { /* could not ask: it runs without a slot */
            job->slotted = true;
            next_asker(adm, &adm->cc_lines, job->task.concurrency_key);
            continue;
        }
        job->asked = false;
        if (bt_redis_reply(r, &reply))
            reply = NULL;
        wait_ms = bt_concurrency_wait(reply);
        freeReplyObject(reply);
        if (wait_ms <= 0) {
            job->slotted = true;
            next_asker(adm, &adm->cc_lines, job->task.concurrency_key);
            if (wait_ms == 0 && !job->leased) {
                job->leased = true;
                job->lease_next = adm->leased;
                adm->leased = job;
                bt_metrics_add(
                    bt_metrics_series(adm->m.cc_in_use, job->task.concurrency_key), 1);
            }
            continue;
        }
        job->slot_backoff = job->slot_backoff ? job->slot_backoff * 2 : 25;
        if (job->slot_backoff > 1000)
            job->slot_backoff = 1000;
        bt_log(BT_LOG_DEBUG,
               "concurrency limited: key=%s wait_ms=%lld workflow=%s seq=%lld",
               job->task.concurrency_key, (long long)wait_ms, job->task.id,
               (long long)job->task.seq);
        bt_job_set_waiting(
            job, bt_metrics_series(adm->m.cc_waiting, job->task.concurrency_key));
        delay(adm, job, wait_ms < job->slot_backoff ? wait_ms : job->slot_backoff);
        jobs[i] = NULL;
    }
}

void bt_admission_admit(struct bt_admission *adm, struct job **jobs, size_t n)
{
    struct bt_redis *r = bt_store_redis(adm->store);
    const char *prefix = bt_store_prefix(adm->store);
    size_t asked = 0;

    acquire_slots(adm, jobs, n);
    for (size_t i = 0; i < n; i++) {
        struct job *job = jobs[i];
        const struct bt_activity_def *def;
        if (!job || job->tokened || !job->task.rate_key)
            continue;
        if (wait_in_line(adm, &adm->lines, job->task.rate_key, job)) {
            bt_job_set_waiting(job,
                               bt_metrics_series(adm->m.rl_waiting, job->task.rate_key));
            if (!job->rate_since)
                job->rate_since = bt_clock_mono_ms();
            jobs[i] = NULL;
            continue;
        }
        def = bt_registry_activity(adm->reg, job->task.name);
        job->asked = bt_ratelimit_append_take(r, prefix, job->task.rate_key,
                                              def ? def->defaults.rate : 0,
                                              def ? def->defaults.burst : 1) == 0;
        if (job->asked)
            asked++;
    }
    for (size_t i = 0; i < n; i++) {
        struct job *job = jobs[i];
        redisReply *reply = NULL;
        int64_t wait_ms, tokens;
        if (!job)
            continue;
        if (!job->asked) {
            /* the call could not be sent (Redis unreachable): it runs without
             * a token, and the next in line asks */
            if (job->task.rate_key && !job->tokened &&
                keyline_get(&adm->lines, job->task.rate_key)->asker == job)
                next_asker(adm, &adm->lines, job->task.rate_key);
            continue;
        }
        job->asked = false;
        if (bt_redis_reply(r, &reply))
            reply = NULL;
        wait_ms = bt_ratelimit_wait(reply, &tokens);
        freeReplyObject(reply);
        if (tokens >= 0)
            bt_metrics_set(bt_metrics_series(adm->m.rl_tokens, job->task.rate_key),
                           tokens);
        if (wait_ms > 0) {
            bt_log(BT_LOG_DEBUG, "rate limited: key=%s wait_ms=%lld workflow=%s seq=%lld",
                   job->task.rate_key, (long long)wait_ms, job->task.id,
                   (long long)job->task.seq);
            if (!job->rate_since)
                job->rate_since = bt_clock_mono_ms();
            bt_job_set_waiting(job,
                               bt_metrics_series(adm->m.rl_waiting, job->task.rate_key));
            delay(adm, job, wait_ms);
            jobs[i] = NULL;
            continue;
        }
        job->tokened = true;
        next_asker(adm, &adm->lines, job->task.rate_key);
        bt_metrics_observe(bt_metrics_series(adm->m.rl_wait, job->task.rate_key),
                           job->rate_since
                               ? (double)(bt_clock_mono_ms() - job->rate_since) / 1000.0
                               : 0);
    }
}

/* Moves the revoked tasks waiting in the lines of lines to *dropped. */
static void drop_from_lines(struct bt_admission *adm, struct keyline *lines,
                            const rd_kafka_topic_partition_list_t *parts,
                            struct job **dropped)
{
    for (struct keyline *line = lines; line; line = line->next) {
        struct job **pp = &line->head;
        while (*pp) {
            struct job *job = *pp;
            if (!bt_job_revoked(job, parts)) {
                pp = &job->next;
                continue;
            }
            *pp = job->next;
            job->next = *dropped;
            *dropped = job;
            adm->n_delayed--;
        }
        line->tail = pp;
    }
}

/* Whether job is the one asking for key's slot or token in lines. */
static bool asks(struct keyline **lines, const char *key, const struct job *job)
{
    return key && keyline_get(lines, key)->asker == job;
}

struct job *bt_admission_drop_revoked(struct bt_admission *adm,
                                      const rd_kafka_topic_partition_list_t *parts)
{
    struct job *dropped = NULL, **pp = &adm->delayed;

    drop_from_lines(adm, adm->lines, parts, &dropped);
    drop_from_lines(adm, adm->cc_lines, parts, &dropped);
    while (*pp) {
        struct job *job = *pp;
        if (!bt_job_revoked(job, parts)) {
            pp = &job->next;
            continue;
        }
        *pp = job->next;
        adm->n_delayed--;
        /* its turn to ask passes on (next_asker's delay() inserts at or
         * before pp: the walk stays valid) */
        if (!job->slotted && asks(&adm->cc_lines, job->task.concurrency_key, job))
            next_asker(adm, &adm->cc_lines, job->task.concurrency_key);
        else if (!job->tokened && asks(&adm->lines, job->task.rate_key, job))
            next_asker(adm, &adm->lines, job->task.rate_key);
        job->next = dropped;
        dropped = job;
    }
    for (struct job *job = dropped; job; job = job->next)
        bt_job_set_waiting(job, NULL);
    return dropped;
}

size_t bt_admission_due(struct bt_admission *adm, struct job **jobs, size_t max)
{
    size_t n = 0;
    int64_t now = bt_clock_now_ms();

    while (adm->delayed && adm->delayed->ready_ms <= now && n < max) {
        jobs[n] = adm->delayed;
        adm->delayed = jobs[n]->next;
        adm->n_delayed--;
        jobs[n++]->next = NULL;
    }
    return n;
}

int64_t bt_admission_next_ms(const struct bt_admission *adm)
{
    return adm->delayed ? adm->delayed->ready_ms : -1;
}

int bt_admission_waiting(const struct bt_admission *adm)
{
    return adm->n_delayed;
}
