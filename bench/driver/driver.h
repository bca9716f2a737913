/* The benchmark driver behind `baton bench [WORKLOAD...]` (bt_cli_bench, in
 * bench.c here): runs the workloads of the benchmark (chain,
 * latency, retry, fanout, limited) and prints one result line per workload: workflows
 * and steps per second, workflow and step latency percentiles, CPU per step of
 * each process, Redis calls and Kafka messages per step.
 *
 * By default it runs its own stack exactly as `baton dev` does: it starts
 * `baton dev` with a temporary home and the bench plugin (bench/bench.c), so
 * redis-server, baton-scheduler, ONE baton-worker and the embedded Kafka
 * cluster (inside the `baton dev` process) each have a pid whose CPU /proc
 * tells. With --attach it uses the configured Kafka and Redis instead, whose
 * workers must load bench.so. The driver produces start events and learns
 * completions from <prefix>.results (one message per instance, deduplicated by
 * id, each checked); the one-at-a-time latency workload waits as `baton start
 * --wait` does, on the instance's history in Redis, and reports the results
 * topic's latency beside it. Step latencies come from the instances' history
 * in Redis afterwards.
 * The limited workload starts two more baton-workers beside dev's for its run
 * and reads when each step started from the results. */
#ifndef BT_BENCH_DRIVER_H
#define BT_BENCH_DRIVER_H

#include <dirent.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <librdkafka/rdkafka.h>

#include "cli.h"
#include "clock.h"
#include "proc.h"
#include "codec.h"
#include "err.h"
#include "history.h"
#include "kafka.h"
#include "ratelimit.h"

#define WARMUP        20   /* chain workflows run before the first workload */
#define STALL_S       60.0 /* a workload fails after this long without a result */
#define START_S       30.0 /* `baton dev` must write its addresses by then */
#define MAX_PIDS      16   /* processes of one role (--attach may find several) */
#define MAX_THREADS   64   /* threads of one process listed in --json */
#define MAX_CMDS      96   /* distinct Redis commands in INFO commandstats */
#define MAX_TOPICS    32
#define HISTORY_CHUNK 256 /* LRANGEs per pipelined round trip */
#define EXTRA_WORKERS 2   /* the limited workload's, beside baton dev's own */
/* the limited workload's bucket as bench/bench.c registers it; the live values
 * in Redis win (an operator may have set others) */
#define LIMIT_KEY   "bench_limited"
#define LIMIT_RATE  100.0
#define LIMIT_BURST 10

enum kind { IDLE, CHAIN, LATENCY, RETRY, FANOUT, LIMITED, RETENTION };

struct workload {
    const char *name;
    const char *type;  /* workflow type in bench.so */
    int workflows;     /* default W */
    bool sequential;   /* one instance at a time */
    const char *about; /* for --help */
};

struct opts {
    enum kind run[16];
    size_t n_run;
    int workflows; /* 0: each workload's default */
    int steps;
    int inflight;
    int running; /* started and not done at most; 0: no bound */
    int idle_s;  /* length of the idle workload */
    bool json;
    bool attach;
};

/* One role of the stack: the processes that play it. */
struct role {
    const char *name;
    pid_t pids[MAX_PIDS];
    int n;
};

enum { R_WORKER, R_SCHEDULER, R_REDIS, R_BROKER, R_DRIVER, N_ROLES };

struct thread_cpu {
    pid_t tid;
    char comm[24];
    unsigned long long ticks;
};

struct stack {
    pid_t dev;                  /* 0: attached to services we did not start */
    pid_t extra[EXTRA_WORKERS]; /* baton-workers we started beside dev's */
    int n_extra;
    char home[PATH_MAX];
    char log[PATH_MAX + 16];
    struct role roles[N_ROLES];
};

struct cmdstat {
    char name[48];
    unsigned long long calls, usec;
};

struct topic_count {
    char name[256];
    long long messages; /* sum of the partitions' high watermarks */
};

struct snapshot {
    double t;
    unsigned long long ticks[N_ROLES];
    unsigned long long wait_ns[N_ROLES];       /* runnable, no CPU: first process */
    unsigned long long busy, total;            /* machine */
    struct thread_cpu threads[2][MAX_THREADS]; /* worker, broker (first pid) */
    int n_threads[2];
    struct cmdstat cmds[MAX_CMDS];
    int n_cmds;
    unsigned long long round_trips; /* Redis's total_writes_processed */
    struct topic_count topics[MAX_TOPICS];
    int n_topics;
};

struct bench {
    struct bt_config *cfg;
    struct opts opts;
    struct stack stack;
    rd_kafka_t *producer, *consumer;
    struct bt_store *store;
    struct bt_cli_follow follow; /* the latency workload's waits */
    struct bt_history hist;
    char events[300];
    char results[300];
    char run_tag[16];
    bool tty;
    int failed;
};

struct run {
    const struct workload *w;
    int n;         /* workflows */
    int k;         /* steps per workflow */
    int expect_v;  /* v of every result */
    char **starts; /* encoded start events */
    size_t *lens;
    char **ids;
    double *t_start, *t_end;
    double *t_seen; /* sequential: when its "finished" record was read from Redis */
    double *t_act;  /* limited: when the step started (wall clock, s), or 0 */
    long *act_pid;  /* limited: the worker process that ran it */
    int started, seen, done, duplicates, bad;
    int bad_seen; /* the caller thread's: outcomes read from Redis not as expected */
    char first_bad_seen[256];
    bool stop; /* atomic: the caller thread gives up */
    char first_bad[512];
    struct bt_kafka_batch kbatch;
};

#define N_WORKLOADS 7
extern const struct workload bench_workloads[N_WORKLOADS];
extern const char *const bench_role_names[N_ROLES];
/* set by SIGINT / SIGTERM: every wait ends, the stack is stopped */
extern volatile sig_atomic_t bench_interrupted;
/* the monotonic clock, in seconds */
double bench_now_s(void);

void bench_run_release(struct run *run);
int bench_run_prepare(struct bench *b, struct run *run, const struct workload *w,
                      const char *tag, int n, int k);
int bench_drive(struct bench *b, struct run *run, int inflight);
/* qsort's order of doubles, ascending */
int bench_cmp_double(const void *a, const void *b);
double bench_pct(const double *sorted, size_t n, double p);
double *bench_step_latencies(struct bench *b, const struct run *run, size_t *n,
                             long *failed_attempts);
void bench_read_cmdstats(struct bench *b, struct snapshot *snap);
void bench_read_topics(struct bench *b, struct snapshot *snap);
void bench_take_snapshot(struct bench *b, struct snapshot *snap, bool services);
int bench_read_stat(const char *path, char *comm, size_t n, pid_t *ppid,
                    unsigned long long *ticks);
int bench_find_procs(const char *comm, pid_t parent, const char *brokers, pid_t *pids,
                     int max);
void bench_read_schedstat(pid_t pid, unsigned long long *run_ns,
                          unsigned long long *wait_ns);
int bench_read_threads(pid_t pid, struct thread_cpu *t, int max);
void bench_machine_cpu(unsigned long long *busy, unsigned long long *total);
void bench_put(json_t *o, const char *key, double v, int decimals);
double bench_seconds(unsigned long long ticks);
unsigned long long bench_cmd_calls(const struct snapshot *s, const char *name, bool usec);
json_t *bench_report(struct bench *b, const struct run *run, const struct snapshot *s0,
                     const struct snapshot *s1);
void bench_emit(const struct bench *b, const json_t *o);
void bench_run_idle(struct bench *b);
int bench_run_workload(struct bench *b, enum kind kind, const char *tag, int n, int k,
                       bool measure);
int bench_run_limited(struct bench *b, const char *tag, int n, bool more);
int bench_run_retention(struct bench *b, const char *tag, int n);
void bench_extra_stop(struct stack *s);
void bench_stack_stop(struct stack *s);
int bench_stack_start(struct stack *s, struct bt_config *cfg);
int bench_extra_start(struct stack *s, const struct bt_config *cfg);
void bench_stack_attach(struct stack *s, const struct bt_config *cfg, struct bt_redis *r);

#endif
