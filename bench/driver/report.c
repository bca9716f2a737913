/* The report: one JSON object per workload, or one key=value line. */
#define _GNU_SOURCE /* nftw, asprintf */
#include "driver.h"

static double round_to(double v, int decimals)
{
    double f = pow(10, decimals);

    return isfinite(v) ? round(v * f) / f : v;
}

void bench_put(json_t *o, const char *key, double v, int decimals)
{
    json_object_set_new(o, key,
                        isfinite(v) ? json_real(round_to(v, decimals)) : json_null());
}

double bench_seconds(unsigned long long ticks)
{
    return (double)ticks / (double)sysconf(_SC_CLK_TCK);
}

unsigned long long bench_cmd_calls(const struct snapshot *s, const char *name, bool usec)
{
    for (int i = 0; i < s->n_cmds; i++)
        if (!strcmp(s->cmds[i].name, name))
            return usec ? s->cmds[i].usec : s->cmds[i].calls;
    return 0;
}

static long long topic_messages(const struct snapshot *s, const char *name)
{
    for (int i = 0; i < s->n_topics; i++)
        if (!strcmp(s->topics[i].name, name))
            return s->topics[i].messages;
    return 0;
}

static unsigned long long thread_ticks(const struct thread_cpu *t, int n, pid_t tid)
{
    for (int i = 0; i < n; i++)
        if (t[i].tid == tid)
            return t[i].ticks;
    return 0;
}

/* The threads of one process that used CPU, busiest first. */
static json_t *threads_json(const struct snapshot *s0, const struct snapshot *s1,
                            int which, pid_t pid, double elapsed)
{
    json_t *arr = json_array();

    for (int i = 0; i < s1->n_threads[which]; i++) {
        const struct thread_cpu *t = &s1->threads[which][i];
        double cpu = bench_seconds(
            t->ticks - thread_ticks(s0->threads[which], s0->n_threads[which], t->tid));
        json_t *o;
        size_t at = 0;
        if (cpu <= 0)
            continue;
        o = json_pack("{s:s, s:i, s:b}", "comm", t->comm, "tid", (int)t->tid, "main",
                      t->tid == pid);
        bench_put(o, "cpu_s", cpu, 2);
        bench_put(o, "util_pct", 100 * cpu / elapsed, 1);
        while (at < json_array_size(arr) &&
               json_real_value(json_object_get(json_array_get(arr, at), "cpu_s")) >= cpu)
            at++;
        json_array_insert_new(arr, at, o);
    }
    return arr;
}

static int cmp_long_desc(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;

    return x > y ? -1 : x < y;
}

/* The limited workload: the rate at which its steps started, over every
 * worker process, next to the bucket's live limit in Redis. The first `burst`
 * steps take the tokens the full bucket held, so the rate is counted after
 * the last of them: n - burst starts in t[n-1] - t[burst-1]. */
static void limited_report(struct bench *b, const struct run *run, json_t *o)
{
    double rate = LIMIT_RATE, *t = calloc((size_t)run->n, sizeof(*t)), observed = NAN;
    long pids[MAX_PIDS], counts[MAX_PIDS];
    int burst = LIMIT_BURST, n = 0, n_pids = 0;
    char key[600], by_proc[256] = "";
    redisReply *reply;

    BT_ASSERT(t);
    bt_ratelimit_key(b->cfg->key_prefix, LIMIT_KEY, key, sizeof(key));
    reply = bt_redis_command(bt_store_redis(b->store), "HMGET %s rate burst", key);
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2) {
        if (reply->element[0]->type == REDIS_REPLY_STRING)
            rate = atof(reply->element[0]->str);
        if (reply->element[1]->type == REDIS_REPLY_STRING)
            burst = atoi(reply->element[1]->str);
    }
    freeReplyObject(reply);
    for (int i = 0; i < run->n; i++) {
        int p;
        if (run->t_act[i] <= 0)
            continue;
        t[n++] = run->t_act[i];
        for (p = 0; p < n_pids && pids[p] != run->act_pid[i]; p++)
            ;
        if (p == n_pids && n_pids < MAX_PIDS) {
            pids[n_pids] = run->act_pid[i];
            counts[n_pids++] = 0;
        }
        if (p < n_pids)
            counts[p]++;
    }
    qsort(t, (size_t)n, sizeof(*t), bench_cmp_double);
    qsort(counts, (size_t)n_pids, sizeof(*counts), cmp_long_desc);
    for (int p = 0; p < n_pids; p++)
        snprintf(by_proc + strlen(by_proc), sizeof(by_proc) - strlen(by_proc), "%s%ld",
                 p ? "/" : "", counts[p]);
    if (burst < 1)
        burst = 1;
    if (n > burst + 1 && t[n - 1] > t[burst - 1])
        observed = (n - burst) / (t[n - 1] - t[burst - 1]);
    bench_put(o, "limit_per_s", rate, 1);
    json_object_set_new(o, "limit_burst", json_integer(burst));
    bench_put(o, "observed_per_s", observed, 2);
    bench_put(o, "first_to_last_start_per_s",
              n > 1 && t[n - 1] > t[0] ? (n - 1) / (t[n - 1] - t[0]) : NAN, 2);
    bench_put(o, "observed_over_limit", observed / rate, 3);
    /* equal within 2 %: the end points are single starts, a few ms apart */
    json_object_set_new(o, "at_limit",
                        json_string(!isfinite(observed)      ? "unknown"
                                    : observed < 0.98 * rate ? "below"
                                    : observed > 1.02 * rate ? "above"
                                                             : "yes"));
    json_object_set_new(o, "step_processes", json_integer(n_pids));
    json_object_set_new(o, "steps_by_process", json_string(by_proc));
    free(t);
}

/* The run's size and speed, and its workflows' and steps' latencies. */
static void report_latencies(struct bench *b, const struct run *run, json_t *o)
{
    double first = run->t_start[0], last = 0, elapsed, *wf_lat, *res_lat, *step_lat;
    double steps = (double)run->n * run->k;
    long failed_attempts;
    size_t n_steps;

    wf_lat = calloc((size_t)run->n, sizeof(*wf_lat));
    res_lat = calloc((size_t)run->n, sizeof(*res_lat));
    BT_ASSERT(wf_lat && res_lat);
    for (int i = 0; i < run->n; i++) {
        res_lat[i] = (run->t_end[i] - run->t_start[i]) * 1000;
        /* one at a time: what the caller waiting on it sees */
        wf_lat[i] =
            run->w->sequential ? (run->t_seen[i] - run->t_start[i]) * 1000 : res_lat[i];
        last = run->t_end[i] > last ? run->t_end[i] : last;
    }
    qsort(wf_lat, (size_t)run->n, sizeof(*wf_lat), bench_cmp_double);
    qsort(res_lat, (size_t)run->n, sizeof(*res_lat), bench_cmp_double);
    elapsed = last - first;
    step_lat = bench_step_latencies(b, run, &n_steps, &failed_attempts);

    json_object_set_new(o, "workload", json_string(run->w->name));
    json_object_set_new(o, "workflows", json_integer(run->n));
    json_object_set_new(o, "steps", json_integer(run->k));
    if (!run->w->sequential) {
        json_object_set_new(o, "inflight", json_integer(b->opts.inflight));
        json_object_set_new(o, "running", json_integer(b->opts.running));
    }
    bench_put(o, "elapsed_s", elapsed, 3);
    bench_put(o, "wf_per_s", run->n / elapsed, 1);
    bench_put(o, "steps_per_s", steps / elapsed, 1);
    bench_put(o, "wf_p50_ms", bench_pct(wf_lat, (size_t)run->n, 50), 2);
    bench_put(o, "wf_p90_ms", bench_pct(wf_lat, (size_t)run->n, 90), 2);
    bench_put(o, "wf_p99_ms", bench_pct(wf_lat, (size_t)run->n, 99), 2);
    bench_put(o, "wf_max_ms", wf_lat[run->n - 1], 2);
    if (run->w->sequential) { /* the same instances, seen on <prefix>.results */
        bench_put(o, "result_topic_p50_ms", bench_pct(res_lat, (size_t)run->n, 50), 2);
        bench_put(o, "result_topic_p99_ms", bench_pct(res_lat, (size_t)run->n, 99), 2);
    }
    /* history timestamps are whole milliseconds */
    bench_put(o, "step_p50_ms", bench_pct(step_lat, n_steps, 50), 0);
    bench_put(o, "step_p90_ms", bench_pct(step_lat, n_steps, 90), 0);
    bench_put(o, "step_p99_ms", bench_pct(step_lat, n_steps, 99), 0);
    bench_put(o, "step_max_ms", n_steps ? step_lat[n_steps - 1] : NAN, 0);
    if (run->w == &bench_workloads[RETRY]) {
        bench_put(o, "retry_floor_s", 0.2, 1);
        bench_put(o, "over_floor_pct", 100 * (elapsed / 0.2 - 1), 0);
        json_object_set_new(o, "failed_attempts", json_integer(failed_attempts));
    }
    free(wf_lat);
    free(res_lat);
    free(step_lat);
}

/* CPU per step and use per role, and what the rest of the machine used.
 * Returns the worker's threads (a new array). */
/* Whether role r's CPU can be told: a process of it that restarted during
 * the run (a redis-server restarted under --attach) took its ticks along. */
static bool role_counted(const struct bench *b, const struct snapshot *s0,
                         const struct snapshot *s1, int r)
{
    return b->stack.roles[r].n && s1->ticks[r] >= s0->ticks[r];
}

static json_t *report_cpu(struct bench *b, const struct snapshot *s0,
                          const struct snapshot *s1, double steps, json_t *o)
{
    double run_s = s1->t - s0->t, ours = 0;
    bool all_counted = true;
    json_t *cpu;

    for (int r = 0; r < N_ROLES; r++) {
        char key[64];
        double s = bench_seconds(s1->ticks[r] - s0->ticks[r]);
        if (b->stack.roles[r].n && !role_counted(b, s0, s1, r)) {
            snprintf(key, sizeof(key), "restarted_%s", bench_role_names[r]);
            json_object_set_new(o, key, json_true());
            all_counted = false;
        }
        if (!role_counted(b, s0, s1, r))
            continue;
        snprintf(key, sizeof(key), "cpu_us_per_step_%s", bench_role_names[r]);
        bench_put(o, key, 1e6 * s / steps, 1);
        ours += s;
    }
    for (int r = 0; r < N_ROLES; r++) {
        char key[64];
        if (!role_counted(b, s0, s1, r))
            continue;
        snprintf(key, sizeof(key), "util_pct_%s", bench_role_names[r]);
        bench_put(o, key, 100 * bench_seconds(s1->ticks[r] - s0->ticks[r]) / run_s, 1);
        if (r == R_BROKER) /* its main thread is baton dev's, not the broker's */
            continue;
        snprintf(key, sizeof(key), "cpu_wait_pct_%s", bench_role_names[r]);
        bench_put(o, key, 100 * (double)(s1->wait_ns[r] - s0->wait_ns[r]) / 1e9 / run_s,
                  1);
    }
    cpu = threads_json(s0, s1, 0, b->stack.roles[R_WORKER].pids[0], run_s);
    if (json_array_size(cpu))
        bench_put(o, "util_pct_worker_busiest_thread",
                  json_real_value(json_object_get(json_array_get(cpu, 0), "util_pct")),
                  1);
    /* CPU that neither the stack nor the driver used, in % of one core: other
     * tenants of the machine make the figures unfair */
    if (s1->total > s0->total && all_counted) {
        unsigned long long busy = s1->busy - s0->busy, total = s1->total - s0->total;
        bench_put(o, "machine_busy_pct", 100.0 * (double)busy / (double)total, 1);
        bench_put(o, "other_cpu_pct", 100 * (bench_seconds(busy) - ours) / run_s, 1);
    }
    return cpu;
}

/* Redis calls, round trips and scripts per step; per command into cmds
 * (calls per step) and usecs (µs per call). */
static void report_redis(const struct snapshot *s0, const struct snapshot *s1,
                         double steps, json_t *o, json_t *cmds, json_t *usecs)
{
    unsigned long long calls = 0, evals = 0;

    /* a restarted Redis counts from 0 again: nothing to tell */
    for (int i = 0; i < s0->n_cmds; i++) {
        if (bench_cmd_calls(s1, s0->cmds[i].name, false) < s0->cmds[i].calls ||
            s1->round_trips < s0->round_trips) {
            json_object_set_new(o, "redis_counters_reset", json_true());
            return;
        }
    }
    for (int i = 0; i < s1->n_cmds; i++) {
        unsigned long long d =
            s1->cmds[i].calls - bench_cmd_calls(s0, s1->cmds[i].name, false);
        if (!d)
            continue;
        calls += d;
        bench_put(cmds, s1->cmds[i].name, (double)d / steps, 2);
        /* where Redis's time goes, nested calls of scripts included: a
         * command whose cost grows with the data held shows here */
        bench_put(
            usecs, s1->cmds[i].name,
            (double)(s1->cmds[i].usec - bench_cmd_calls(s0, s1->cmds[i].name, true)) /
                (double)d,
            2);
        if (!strcmp(s1->cmds[i].name, "evalsha") || !strcmp(s1->cmds[i].name, "eval"))
            evals += d;
    }
    bench_put(o, "redis_calls_per_step", (double)calls / steps, 2);
    bench_put(o, "redis_round_trips_per_step",
              (double)(s1->round_trips - s0->round_trips) / steps, 2);
    bench_put(o, "redis_scripts_per_step", (double)evals / steps, 2);
    bench_put(o, "redis_usec_per_step",
              (double)(bench_cmd_calls(s1, "evalsha", true) -
                       bench_cmd_calls(s0, "evalsha", true)) /
                  steps,
              1);
}

/* Kafka messages per step (per topic into topics), and the dead letters. */
static void report_kafka(struct bench *b, const struct snapshot *s0,
                         const struct snapshot *s1, double steps, json_t *o,
                         json_t *topics)
{
    long long msgs = 0;
    char dlq_topic[300];

    for (int i = 0; i < s1->n_topics; i++) {
        long long d = s1->topics[i].messages - topic_messages(s0, s1->topics[i].name);
        if (!d)
            continue;
        msgs += d;
        bench_put(topics, s1->topics[i].name, (double)d / steps, 2);
    }
    bench_put(o, "kafka_msgs_per_step", (double)msgs / steps, 2);
    bt_kafka_topic(b->cfg, "dlq", dlq_topic, sizeof(dlq_topic));
    json_object_set_new(
        o, "dead_letters",
        json_integer(topic_messages(s1, dlq_topic) - topic_messages(s0, dlq_topic)));
}

json_t *bench_report(struct bench *b, const struct run *run, const struct snapshot *s0,
                     const struct snapshot *s1)
{
    json_t *o = json_object(), *cmds = json_object(), *usecs = json_object(),
           *topics = json_object(), *cpu;
    double steps = (double)run->n * run->k;

    report_latencies(b, run, o);
    if (run->w == &bench_workloads[LIMITED])
        limited_report(b, run, o);
    cpu = report_cpu(b, s0, s1, steps, o);
    report_redis(s0, s1, steps, o, cmds, usecs);
    report_kafka(b, s0, s1, steps, o, topics);
    json_object_set_new(o, "duplicate_results", json_integer(run->duplicates));
    json_object_set_new(o, "bad_results", json_integer(run->bad));
    json_object_set_new(o, "redis_calls_per_step_by_command", cmds);
    json_object_set_new(o, "redis_usec_per_call_by_command", usecs);
    json_object_set_new(o, "kafka_msgs_per_step_by_topic", topics);
    json_object_set_new(o, "worker_threads", cpu);
    if (b->stack.roles[R_BROKER].n)
        json_object_set_new(
            o, "broker_threads",
            threads_json(s0, s1, 1, b->stack.roles[R_BROKER].pids[0], s1->t - s0->t));
    return o;
}

/* One logfmt line of o's scalar fields, in order. */
static void print_line(const json_t *o)
{
    const char *key;
    json_t *v;
    int first = 1;

    json_object_foreach((json_t *)(uintptr_t)o, key, v)
    {
        double d;
        if (json_is_object(v) || json_is_array(v))
            continue;
        printf("%s%s=", first ? "" : " ", key);
        first = 0;
        if (json_is_string(v)) {
            printf("%s", json_string_value(v));
        } else if (json_is_integer(v)) {
            printf("%lld", (long long)json_integer_value(v));
        } else if (json_is_boolean(v)) {
            printf("%s", json_is_true(v) ? "true" : "false");
        } else if (json_is_real(v)) {
            d = json_real_value(v);
            printf("%.*f", fabs(d) >= 1000 ? 0 : fabs(d) >= 100 ? 1 : 2, d);
        } else {
            printf("NA");
        }
    }
    printf("\n");
}

void bench_emit(const struct bench *b, const json_t *o)
{
    if (b->opts.json) {
        char *text = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(10));
        printf("%s\n", text ? text : "{}");
        free(text);
    } else {
        print_line(o);
    }
    fflush(stdout);
}
