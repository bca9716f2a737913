/* The driver: start events out, results in, one workload at a time; and
 * the step latencies read from the instances' history afterwards. */
#define _GNU_SOURCE /* nftw, asprintf */
#include "driver.h"

void bench_run_release(struct run *run)
{
    for (int i = 0; i < run->n; i++) {
        if (run->starts)
            free(run->starts[i]);
        if (run->ids)
            free(run->ids[i]);
    }
    free(run->starts);
    free(run->lens);
    free(run->ids);
    free(run->t_start);
    free(run->t_end);
    free(run->t_seen);
    free(run->t_act);
    free(run->act_pid);
}

int bench_run_prepare(struct bench *b, struct run *run, const struct workload *w,
                      const char *tag, int n, int k)
{
    static const char pad[] =
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

    memset(run, 0, sizeof(*run));
    run->w = w;
    run->n = n;
    run->k = w == &bench_workloads[RETRY]     ? 3
             : w == &bench_workloads[FANOUT]  ? 10
             : w == &bench_workloads[LIMITED] ? 1
                                              : k;
    run->expect_v = w == &bench_workloads[FANOUT] ? 1 : run->k;
    run->starts = calloc((size_t)n, sizeof(*run->starts));
    run->lens = calloc((size_t)n, sizeof(*run->lens));
    run->ids = calloc((size_t)n, sizeof(*run->ids));
    run->t_start = calloc((size_t)n, sizeof(*run->t_start));
    run->t_end = calloc((size_t)n, sizeof(*run->t_end));
    run->t_seen = calloc((size_t)n, sizeof(*run->t_seen));
    run->t_act = calloc((size_t)n, sizeof(*run->t_act));
    run->act_pid = calloc((size_t)n, sizeof(*run->act_pid));
    if (!run->starts || !run->lens || !run->ids || !run->t_start || !run->t_end ||
        !run->t_seen || !run->t_act || !run->act_pid)
        return BT_ENOMEM;
    /* encoded up front: the driver's CPU during the run stays small */
    for (int i = 0; i < n; i++) {
        struct bt_msg msg = {.type = BT_MSG_START,
                             .workflow = (char *)(uintptr_t)w->type};
        if (asprintf(&run->ids[i], "%s-%s-%d", b->run_tag, tag, i) < 0) {
            run->ids[i] = NULL;
            return BT_ENOMEM;
        }
        msg.id = run->ids[i];
        msg.body = json_pack("{s:s, s:i, s:i, s:s}", "wf", run->ids[i], "v", 0, "k", k,
                             "pad", pad);
        msg.ts = bt_clock_now_ms();
        run->starts[i] = bt_codec_encode(&msg, &run->lens[i]);
        json_decref(msg.body);
        if (!run->starts[i])
            return BT_ENOMEM;
    }
    return 0;
}

static int produce_start(struct bench *b, struct run *run)
{
    int i = run->started, rc;

    /* from before the call, as the peers' harness times its start calls */
    run->t_start[i] = bench_now_s();
    rc = bt_kafka_produce(b->producer, b->events, run->ids[i], strlen(run->ids[i]),
                          run->starts[i], run->lens[i], &run->kbatch);
    if (rc)
        return rc;
    run->started++;
    return 0;
}

/* Waits as a caller of `baton start --wait` does for the instance started
 * last: until its "finished" record is in Redis (a blocking read of its
 * history, woken by the finishing commit). Its result message is checked
 * when it comes. Returns 0, BT_EAGAIN (Redis lost), BT_ETIMEDOUT (a stall) or
 * BT_EIO (bench_interrupted, or the run stopped). */
static int await_finished(struct bench *b, struct run *run)
{
    int i = run->seen;

    while (!bench_interrupted && !__atomic_load_n(&run->stop, __ATOMIC_ACQUIRE)) {
        json_t *rec = NULL;
        int rc = bt_cli_follow(&b->follow, b->store, run->ids[i], 1000, &b->hist, &rec);
        if (rc == 1) {
            const json_t *res = json_object_get(rec, "result");
            const char *status = json_string_value(json_object_get(rec, "status"));
            const char *wf = json_string_value(json_object_get(res, "wf"));
            run->t_seen[i] = bench_now_s();
            /* the outcome as the caller sees it: checked like the result message */
            if (!status || strcmp(status, "completed") || !wf ||
                strcmp(wf, run->ids[i]) ||
                json_integer_value(json_object_get(res, "v")) != run->expect_v) {
                if (!run->bad_seen++)
                    snprintf(run->first_bad_seen, sizeof(run->first_bad_seen),
                             "%s (read from Redis) %s", run->ids[i],
                             status ? status : "?");
            }
            run->seen++;
            json_decref(rec);
            return 0;
        }
        if (rc) {
            fprintf(stderr, "\nbaton bench: %s: lost Redis while waiting for %s\n",
                    run->w->name, run->ids[i]);
            return BT_EAGAIN;
        }
        if (bench_now_s() - run->t_start[i] > STALL_S) {
            fprintf(stderr,
                    "\nbaton bench: %s: %s did not finish in %.0f s (worker log: %s)\n",
                    run->w->name, run->ids[i], STALL_S,
                    b->stack.dev ? b->stack.log : "?");
            return BT_ETIMEDOUT;
        }
    }
    return BT_EIO;
}

/* The index of one of our instances in the result's id, or -1. */
static int index_of(const struct run *run, const char *id)
{
    const char *dash = strrchr(id, '-');
    char *end;
    long i;

    if (!dash)
        return -1;
    i = strtol(dash + 1, &end, 10);
    if (*end || i < 0 || i >= run->n || strcmp(run->ids[i], id))
        return -1;
    return (int)i;
}

static void check_result(struct run *run, const struct bt_msg *msg)
{
    const json_t *body = msg->body;
    json_int_t v = json_integer_value(json_object_get(body, "v"));
    const char *wf = json_string_value(json_object_get(body, "wf"));

    if (msg->status && !strcmp(msg->status, "completed") && v == run->expect_v && wf &&
        !strcmp(wf, msg->id))
        return;
    if (!run->bad++) {
        char *text = body ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        snprintf(run->first_bad, sizeof(run->first_bad), "%s %s: %s%s%s", msg->id,
                 msg->status ? msg->status : "?", text ? text : "",
                 msg->error.type ? " " : "",
                 msg->error.message ? msg->error.message : "");
        free(text);
    }
}

static void take_result(struct bench *b, struct run *run, const rd_kafka_message_t *rkm)
{
    struct bt_msg msg;
    char errstr[256];
    int i;

    if (rkm->err || bt_codec_decode(rkm->payload, rkm->len, (size_t)b->cfg->max_payload,
                                    &msg, errstr, sizeof(errstr)))
        return;
    if (msg.type == BT_MSG_RESULT && (i = index_of(run, msg.id)) >= 0) {
        if (run->t_end[i] > 0) {
            run->duplicates++;
        } else {
            const json_t *t_us = json_object_get(msg.body, "t_us");
            run->t_end[i] = bench_now_s();
            run->done++;
            check_result(run, &msg);
            if (json_is_integer(t_us)) {
                run->t_act[i] = (double)json_integer_value(t_us) / 1e6;
                run->act_pid[i] =
                    (long)json_integer_value(json_object_get(msg.body, "pid"));
            }
        }
    }
    bt_msg_release(&msg);
}

static void progress(struct bench *b, const struct run *run, double t0, bool last)
{
    static double shown;
    double now = bench_now_s(), el = now - t0;
    char bar[31];
    int filled = run->n ? run->done * 30 / run->n : 30;

    if (!b->tty || (!last && now - shown < 0.1))
        return;
    shown = now;
    for (int i = 0; i < 30; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[30] = '\0';
    fprintf(stderr, "\r%-8s [%s] %d/%d  %.0f wf/s  %.1f s \033[K", run->w->name, bar,
            run->done, run->n, el > 0 ? run->done / el : 0.0, el);
    if (last)
        fprintf(stderr, "\r\033[K");
}

struct caller {
    struct bench *b;
    struct run *run;
    bool failed; /* atomic */
};

/* One instance at a time, as a user of `baton start --wait` runs them: start
 * it, wait for it in Redis, start the next. */
static void *call_one_at_a_time(void *arg)
{
    struct caller *c = arg;
    struct run *run = c->run;

    while (run->started < run->n && !bench_interrupted &&
           !__atomic_load_n(&run->stop, __ATOMIC_ACQUIRE)) {
        if (produce_start(c->b, run)) {
            rd_kafka_poll(c->b->producer, 10); /* a full queue: reports make room */
            continue;
        }
        rd_kafka_poll(c->b->producer, 0);
        if (await_finished(c->b, run)) {
            __atomic_store_n(&c->failed, true, __ATOMIC_RELEASE);
            break;
        }
    }
    return NULL;
}

/* Runs the instances of run to completion: at most inflight start events
 * waiting for their delivery report (the peers' harness bounds start calls
 * the same way), or one instance at a time (a caller thread starts them).
 * This thread reads and checks the results. Returns 0, or BT_EIO (a stall,
 * an interrupt, a caller that failed: said on stderr). */
int bench_drive(struct bench *b, struct run *run, int inflight)
{
    double t0 = bench_now_s(), last_result = t0;
    bool sequential = run->w->sequential;
    struct caller caller = {.b = b, .run = run};
    pthread_t caller_thread;
    int ret = BT_EIO;

    if (sequential && pthread_create(&caller_thread, NULL, call_one_at_a_time, &caller)) {
        fprintf(stderr, "baton bench: cannot start a thread\n");
        return BT_EIO;
    }
    while (run->done < run->n) {
        rd_kafka_message_t *rkm;
        int wait_ms;

        if (bench_interrupted || __atomic_load_n(&caller.failed, __ATOMIC_ACQUIRE))
            goto out;
        while (!sequential && run->started < run->n &&
               __atomic_load_n(&run->kbatch.pending, __ATOMIC_ACQUIRE) < inflight &&
               (!b->opts.running || run->started - run->done < b->opts.running))
            if (produce_start(b, run))
                break;
        if (!sequential)
            rd_kafka_poll(b->producer, 0);
        /* a short wait while starts are held back by delivery reports */
        wait_ms = !sequential && run->started < run->n ? 1 : 50;
        while ((rkm = rd_kafka_consumer_poll(b->consumer, wait_ms))) {
            int before = run->done;
            take_result(b, run, rkm);
            rd_kafka_message_destroy(rkm);
            if (run->done > before)
                last_result = bench_now_s();
            wait_ms = 0;
        }
        if (bench_now_s() - last_result > STALL_S) {
            if (b->tty)
                fprintf(stderr, "\n");
            fprintf(
                stderr,
                "baton bench: %s: no result for %.0f s; %d of %d done (worker log: %s)\n",
                run->w->name, STALL_S, run->done, run->n,
                b->stack.dev ? b->stack.log : "?");
            goto out;
        }
        progress(b, run, t0, false);
    }
    rd_kafka_flush(b->producer, 1000);
    progress(b, run, t0, true);
    ret = 0;
out:
    if (sequential) {
        if (ret) /* the caller gives up within its next wait */
            __atomic_store_n(&run->stop, true, __ATOMIC_RELEASE);
        pthread_join(caller_thread, NULL);
        if (!run->bad && run->bad_seen)
            snprintf(run->first_bad, sizeof(run->first_bad), "%s", run->first_bad_seen);
        run->bad += run->bad_seen;
    }
    return ret;
}

struct sched {
    int64_t seq;
    int attempt;
    int64_t ts;
};

int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* Nearest rank, as the peers' harness computes it. sorted[0..n) ascending. */
double bench_pct(const double *sorted, size_t n, double p)
{
    long i;

    if (!n)
        return NAN;
    i = (long)ceil(p / 100.0 * (double)n) - 1;
    return sorted[i < 0 ? 0 : (size_t)i >= n ? n - 1 : (size_t)i];
}

/* What one instance's history says about its steps. */
struct steps {
    struct sched *open; /* attempts scheduled, not completed yet */
    size_t n_open;
    double **lat; /* latencies found, ms */
    size_t *n, *cap;
    long *failed_attempts;
};

static void history_record(struct steps *st, const char *text, size_t len)
{
    json_t *rec = json_loadb(text, len, 0, NULL);
    const char *ev = json_string_value(json_object_get(rec, "ev"));
    int64_t seq = json_integer_value(json_object_get(rec, "seq"));
    int attempt = (int)json_integer_value(json_object_get(rec, "attempt"));
    int64_t ts = json_integer_value(json_object_get(rec, "ts"));

    if (ev && !strcmp(ev, "activity_scheduled")) {
        st->open[st->n_open++] = (struct sched){seq, attempt, ts};
    } else if (ev && !strcmp(ev, "activity_failed")) {
        (*st->failed_attempts)++;
    } else if (ev && !strcmp(ev, "activity_completed")) {
        for (size_t j = 0; j < st->n_open; j++) {
            if (st->open[j].seq != seq || st->open[j].attempt != attempt)
                continue;
            if (*st->n == *st->cap) {
                size_t cap = *st->cap ? *st->cap * 2 : 1024;
                double *grown = realloc(*st->lat, cap * sizeof(**st->lat));
                if (!grown)
                    break;
                *st->lat = grown;
                *st->cap = cap;
            }
            (*st->lat)[(*st->n)++] = (double)(ts - st->open[j].ts);
            st->open[j] = st->open[--st->n_open];
            break;
        }
    }
    json_decref(rec);
}

/* One instance's history (an LRANGE reply of its list: a fresh stack has
 * no old streams, history.h): appends the latency of every activity attempt
 * that completed, in ms, and counts failed attempts. */
static void history_steps(const redisReply *reply, double **lat, size_t *n, size_t *cap,
                          long *failed_attempts)
{
    struct steps st = {
        .lat = lat, .n = n, .cap = cap, .failed_attempts = failed_attempts};

    if (!reply || reply->type != REDIS_REPLY_ARRAY ||
        !(st.open = calloc(reply->elements + 1, sizeof(*st.open))))
        return;
    for (size_t i = 0; i < reply->elements; i++) {
        char *text = bt_history_unpack(reply->element[i]->str, reply->element[i]->len);
        if (text)
            history_record(&st, text, strlen(text));
        free(text);
    }
    free(st.open);
}

/* Step latencies of every instance of run, sorted; *n of them. */
double *bench_step_latencies(struct bench *b, const struct run *run, size_t *n,
                             long *failed_attempts)
{
    struct bt_redis *r = bt_store_redis(b->store);
    double *lat = NULL;
    size_t cap = 0;

    *n = 0;
    *failed_attempts = 0;
    for (int from = 0; from < run->n; from += HISTORY_CHUNK) {
        int to = from + HISTORY_CHUNK < run->n ? from + HISTORY_CHUNK : run->n;
        for (int i = from; i < to; i++) {
            char key[600];
            const char *argv[] = {"LRANGE", key, "0", "-1"};
            bt_history_key(b->store, run->ids[i], 0, key, sizeof(key));
            if (bt_redis_append_argv(r, 4, argv, NULL))
                return lat;
        }
        for (int i = from; i < to; i++) {
            redisReply *reply = NULL;
            if (bt_redis_reply(r, &reply))
                continue;
            history_steps(reply, &lat, n, &cap, failed_attempts);
            freeReplyObject(reply);
        }
    }
    if (lat)
        qsort(lat, *n, sizeof(*lat), bench_cmp_double);
    return lat;
}
