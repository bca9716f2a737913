/* `baton bench`: the workloads, one workload's run, and the set-up
 * (bench/README.md). */
#define _GNU_SOURCE /* nftw, asprintf */
#include "driver.h"

const struct workload bench_workloads[] = {
    [IDLE] = {"idle", NULL, 0, false,
              "--idle-s S (30) without work: CPU and Redis calls that polling costs"},
    [CHAIN] = {"chain", "bench_chain", 2000, false,
               "W workflows of K no-op steps in sequence"},
    [LATENCY] = {"latency", "bench_chain", 200, true,
                 "W workflows of K steps, one at a time"},
    [RETRY] = {"retry", "bench_retry", 200, false,
               "3 steps, the 2nd fails twice then succeeds (fixed 100 ms backoff)"},
    [FANOUT] = {"fanout", "bench_fanout", 500, false, "10 parallel steps, then fan-in"},
    [LIMITED] = {"limited", "bench_limited", 1000, false,
                 "W one-step workflows, 3 worker processes sharing a 100/s rate limit"},
    [RETENTION] = {"retention", "bench_chain", 10000, false,
                   "W chains, then every finished one deleted by query at once: how fast "
                   "the scheduler archives and deletes them (not in the default set)"},
};

volatile sig_atomic_t bench_interrupted;

static void on_signal(int sig)
{
    (void)sig;
    bench_interrupted = 1;
}

double bench_now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The stack with nothing to do: CPU and Redis calls per second of polling,
 * over --idle-s (30 s: a 10 ms CPU tick is then 0.03 % of a core). */
void bench_run_idle(struct bench *b)
{
    struct snapshot *s0 = calloc(1, sizeof(*s0)), *s1 = calloc(1, sizeof(*s1));
    unsigned long long calls = 0;
    json_t *o;
    double el;

    if (!s0 || !s1)
        goto out;
    bench_take_snapshot(b, s0, true);
    bt_clock_sleep_ms(b->opts.idle_s * 1000);
    bench_take_snapshot(b, s1, true);
    el = s1->t - s0->t;
    o = json_pack("{s:s}", "workload", "idle");
    bench_put(o, "elapsed_s", el, 2);
    for (int r = 0; r < N_ROLES; r++) {
        char key[64];
        if (!b->stack.roles[r].n || r == R_DRIVER)
            continue;
        snprintf(key, sizeof(key), "util_pct_%s", bench_role_names[r]);
        bench_put(o, key, 100 * bench_seconds(s1->ticks[r] - s0->ticks[r]) / el, 1);
    }
    for (int i = 0; i < s1->n_cmds; i++)
        calls += s1->cmds[i].calls - bench_cmd_calls(s0, s1->cmds[i].name, false);
    bench_put(o, "redis_calls_per_s", (double)calls / el, 0);
    bench_put(o, "redis_round_trips_per_s",
              (double)(s1->round_trips - s0->round_trips) / el, 0);
    bench_emit(b, o);
    json_decref(o);
out:
    free(s0);
    free(s1);
}

int bench_run_workload(struct bench *b, enum kind kind, const char *tag, int n, int k,
                       bool measure)
{
    const struct workload *w = &bench_workloads[kind];
    struct snapshot *s0 = calloc(1, sizeof(*s0)), *s1 = calloc(1, sizeof(*s1));
    struct run run = {0};
    int ret = BT_ENOMEM;

    if (!s0 || !s1 || bench_run_prepare(b, &run, w, tag, n, k)) {
        fprintf(stderr, "baton bench: out of memory\n");
        goto out;
    }
    if (measure)
        bench_take_snapshot(b, s0, true);
    if ((ret = bench_drive(b, &run, w->sequential ? 1 : b->opts.inflight)))
        goto out;
    if (measure) {
        bench_take_snapshot(b, s1, false);
        /* counters settle: the worker acks its outbox after the results */
        bt_clock_sleep_ms(200);
        bench_read_cmdstats(b, s1);
        bench_read_topics(b, s1);
        json_t *o = bench_report(b, &run, s0, s1);
        bench_emit(b, o);
        json_decref(o);
    }
    if (run.bad) {
        fprintf(stderr, "baton bench: %s: %d wrong results, e.g. %s\n", w->name, run.bad,
                run.first_bad);
        ret = BT_EIO;
        goto out;
    }
    ret = 0;
out:
    bench_run_release(&run);
    free(s0);
    free(s1);
    return ret;
}

/* The limited workload: EXTRA_WORKERS more worker processes join baton dev's
 * (with --attach: the workers that serve the stack), a warm-up creates the
 * bucket and settles the groups, then W one-step workflows compete for its
 * tokens. The extra workers are stopped whatever happens; when more
 * bench_workloads follow, a warm-up waits for the rebalance that leaves. */
int bench_run_limited(struct bench *b, const char *tag, int n, bool more)
{
    int ret = 0;

    if (!b->opts.attach) {
        if (b->tty)
            fprintf(stderr, "limited: starting %d more baton-workers...\r",
                    EXTRA_WORKERS);
        if ((ret = bench_extra_start(&b->stack, b->cfg)))
            goto out;
    }
    if ((ret = bench_run_workload(b, LIMITED, "warmup-limited", WARMUP, 1, false)))
        goto out;
    bt_clock_sleep_ms(300); /* the bucket fills up again (burst 10 at 100/s: 0.1 s) */
    ret = bench_run_workload(b, LIMITED, tag, n, 1, true);
out:
    if (b->stack.n_extra) {
        bench_extra_stop(&b->stack);
        if (more && !bench_interrupted &&
            bench_run_workload(b, CHAIN, "warmup-after-limited", WARMUP, 3, false))
            ret = BT_EIO;
    }
    return ret;
}

static void workloads_help(void *file)
{
    FILE *f = file;

    fprintf(f, "\nWorkloads (default: idle chain latency retry fanout limited):\n");
    for (size_t i = 0; i < N_WORKLOADS; i++)
        fprintf(f, "  %-8s %s\n", bench_workloads[i].name, bench_workloads[i].about);
    fprintf(f,
            "\nThe stack gets --concurrency, --partitions, --queues, --eager, --plugin "
            "and --kafka.*\n(default plugin: <bin>/../plugins/bench.so).\n");
}

static int64_t workflows_arg, steps_arg = 3, inflight_arg = 200, idle_s_arg = 30,
                              running_arg;
static bool json_arg, attach_arg;

static const struct bt_arg bench_args[] = {
    {"workflows", 0, BT_ARG_INT, &workflows_arg, "W",
     "chain 2000, latency 200, retry 200, fanout 500, limited 1000, retention 10000", 1,
     10000000, .help = "instances per workload"},
    {"steps", 0, BT_ARG_INT, &steps_arg, "K", "3", 1, 10000000,
     .help = "steps of chain and latency"},
    {"inflight", 0, BT_ARG_INT, &inflight_arg, "N", "200", 1, 10000000,
     .help = "start events awaiting Kafka's ack at most"},
    {"running", 0, BT_ARG_INT, &running_arg, "R", "no bound", 0, 10000000,
     .help = "instances started and not finished at most (a closed loop: W then "
             "measures the data held, not a backlog of W running instances)"},
    {"idle-s", 0, BT_ARG_INT, &idle_s_arg, "S", "30", 1, 10000000,
     .help = "length of the idle workload, seconds"},
    {"json", 0, BT_ARG_BOOL, &json_arg,
     .help = "one JSON object per workload instead of key=value"},
    {"attach", 0, BT_ARG_BOOL, &attach_arg,
     .help = "use the configured --brokers/--redis (their workers must load bench.so) "
             "instead of starting `baton dev` in a temporary home"},
    {NULL},
};

static const struct bt_cmd bench_cmd = {
    .name = "baton bench",
    .synopsis = "[WORKLOAD...] [--workflows W] [--steps K] [--inflight N] [--running R] "
                "[--idle-s S] [--json] [--attach]",
    .about = "Measure throughput, latency and cost per step on a fresh embedded stack "
             "(bench/README.md).",
    .args = bench_args,
    .max_pos = 16,
    .more = workloads_help,
};

static int parse(int argc, char **argv, struct opts *o)
{
    char *pos[16];
    int n_pos, ret;

    if ((ret = bt_cli_args(&bench_cmd, argc, argv, pos, &n_pos)) >= 0)
        return ret;
    *o = (struct opts){.workflows = (int)workflows_arg,
                       .steps = (int)steps_arg,
                       .inflight = (int)inflight_arg,
                       .running = (int)running_arg,
                       .idle_s = (int)idle_s_arg,
                       .json = json_arg,
                       .attach = attach_arg};
    for (int i = 0; i < n_pos; i++) {
        size_t k;
        for (k = 0; k < N_WORKLOADS && strcmp(pos[i], bench_workloads[k].name); k++)
            ;
        if (k == N_WORKLOADS) {
            fprintf(stderr,
                    "baton bench: unknown workload \"%s\" (`baton bench --help` lists "
                    "them)\n",
                    pos[i]);
            return BT_EXIT_USAGE;
        }
        o->run[o->n_run++] = (enum kind)k;
    }
    if (!o->n_run) {
        o->run[o->n_run++] = IDLE;
        o->run[o->n_run++] = CHAIN;
        o->run[o->n_run++] = LATENCY;
        o->run[o->n_run++] = RETRY;
        o->run[o->n_run++] = FANOUT;
        o->run[o->n_run++] = LIMITED;
    }
    return -1;
}

/* A consumer of <prefix>.results that starts at the current end of every
 * partition: results of earlier runs are not ours. */
static int results_consumer(struct bench *b, char *errstr, size_t n)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_partition_list_t *parts = NULL;
    rd_kafka_topic_t *rkt;
    char group[64];
    int ret = BT_EIO;

    snprintf(group, sizeof(group), "baton-bench-%d", (int)getpid());
    if (!(b->consumer = bt_kafka_consumer_new(b->cfg, group, NULL, NULL, errstr, n)))
        return BT_EIO;
    rkt = rd_kafka_topic_new(b->consumer, b->results, NULL);
    if (rd_kafka_metadata(b->consumer, 0, rkt, &md, 10000) || md->topic_cnt != 1 ||
        md->topics[0].err) {
        snprintf(errstr, n, "no topic %s at %s", b->results, b->cfg->brokers);
        goto out;
    }
    parts = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
    for (int p = 0; p < md->topics[0].partition_cnt; p++) {
        int64_t lo, hi;
        int32_t id = md->topics[0].partitions[p].id;
        if (rd_kafka_query_watermark_offsets(b->consumer, b->results, id, &lo, &hi,
                                             10000)) {
            snprintf(errstr, n, "cannot read the offsets of %s", b->results);
            goto out;
        }
        rd_kafka_topic_partition_list_add(parts, b->results, id)->offset = hi;
    }
    if (rd_kafka_assign(b->consumer, parts)) {
        snprintf(errstr, n, "cannot assign %s", b->results);
        goto out;
    }
    ret = 0;
out:
    if (parts)
        rd_kafka_topic_partition_list_destroy(parts);
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return ret;
}

/* Starts the embedded stack for the run. The idle workload alone measures
 * it as baton dev runs it; the others, the engine, on the embedded cluster
 * at 1 ms, the nearest it comes to a real broker (config.h). */
static int start_stack(struct bench *b, struct bt_config *cfg)
{
    bool idle_only = b->opts.n_run == 1 && b->opts.run[0] == IDLE;

    if (b->tty)
        fprintf(stderr, "starting baton dev (redis-server, embedded Kafka, scheduler, "
                        "worker)...\r");
    if (!bt_config_kafka(cfg, "fetch.wait.max.ms") &&
        bt_config_add_kafka(cfg, "fetch.wait.max.ms",
                            idle_only ? BT_DEV_FETCH_WAIT_MS : "1"))
        return BT_ENOMEM;
    return bench_stack_start(&b->stack, cfg);
}

/* The workloads asked for, in order: BT_EXIT_OK, or BT_EXIT_FAIL when one
 * failed (the others still run). */
static int run_all(struct bench *b)
{
    int ret = BT_EXIT_OK;

    for (size_t i = 0; i < b->opts.n_run && !bench_interrupted; i++) {
        enum kind kind = b->opts.run[i];
        const struct workload *w = &bench_workloads[kind];
        int n = b->opts.workflows ? b->opts.workflows : w->workflows;
        char tag[32];
        if (kind == IDLE) {
            bench_run_idle(b);
            continue;
        }
        snprintf(tag, sizeof(tag), "%s%zu", w->name, i);
        if (kind == LIMITED) {
            if (bench_run_limited(b, tag, n, i + 1 < b->opts.n_run))
                ret = BT_EXIT_FAIL;
            continue;
        }
        if (kind == RETENTION) {
            if (bench_run_retention(b, tag, n))
                ret = BT_EXIT_FAIL;
            continue;
        }
        if (bench_run_workload(b, kind, tag, n, b->opts.steps, true))
            ret = BT_EXIT_FAIL;
    }
    return ret;
}

int bt_cli_bench(struct bt_config *cfg, int argc, char **argv)
{
    struct bench b = {.cfg = cfg, .tty = isatty(STDERR_FILENO)};
    char errstr[512];
    int ret;

    if ((ret = parse(argc, argv, &b.opts)) >= 0)
        return ret;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    snprintf(b.run_tag, sizeof(b.run_tag), "%06x",
             (unsigned)((unsigned)bt_clock_now_ms() ^ ((unsigned)getpid() << 12)) &
                 0xffffff);
    bt_kafka_topic(cfg, "events", b.events, sizeof(b.events));
    bt_kafka_topic(cfg, "results", b.results, sizeof(b.results));

    ret = BT_EXIT_UNAVAILABLE;
    if (!b.opts.attach && start_stack(&b, cfg))
        goto out;
    bt_history_init(&b.hist);
    bt_cli_follow_init(&b.follow, cfg);
    if (!(b.store = bt_cli_store(cfg)))
        goto out;
    if (b.opts.attach)
        bench_stack_attach(&b.stack, cfg, bt_store_redis(b.store));
    b.stack.roles[R_DRIVER].pids[0] = getpid();
    b.stack.roles[R_DRIVER].n = 1;
    if (!(b.producer = bt_kafka_producer_new(cfg, errstr, sizeof(errstr))) ||
        results_consumer(&b, errstr, sizeof(errstr))) {
        fprintf(stderr, "baton bench: %s\n", errstr);
        goto out;
    }
    if (b.tty)
        fprintf(stderr, "\033[K");

    /* not measured: joins the consumer groups, loads the scripts, warms caches */
    if (bench_run_workload(&b, CHAIN, "warmup", WARMUP, 3, false)) {
        ret = BT_EXIT_FAIL;
        goto out;
    }
    ret = run_all(&b);
    if (bench_interrupted) {
        fprintf(stderr, "baton bench: bench_interrupted; stopping the stack\n");
        ret = BT_EXIT_FAIL;
    }
out:
    if (b.consumer) {
        rd_kafka_consumer_close(b.consumer);
        rd_kafka_destroy(b.consumer);
    }
    if (b.producer)
        rd_kafka_destroy(b.producer);
    bt_store_destroy(b.store);
    bt_cli_follow_release(&b.follow);
    bt_history_release(&b.hist);
    bench_stack_stop(&b.stack);
    return ret;
}
