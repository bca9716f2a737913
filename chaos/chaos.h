/* baton-chaos: runs real baton processes (workers, schedulers) against a
 * redis-server and a Kafka mock cluster of its own, injects faults on a
 * schedule while a steady stream of three-step workflows runs, then lets the
 * system drain and checks the invariants of docs/reliability.md from the
 * outside: one result per instance, no unexpected failure or dead letter, the
 * poison message dead-lettered, each step executed at least once and not
 * much more, no stall. One summary line says PASS or FAIL per invariant.
 *
 * The modules share one struct chaos_run; each file owns the fields of its
 * section below and is the only one to change them:
 *   opts.c    flags and presets          stack.c   redis, Kafka, the log
 *   procs.c   worker/scheduler processes faults.c  the fault schedule
 *   load.c    starts and the poison      count.c   results, dead letters, executions
 *   report.c  invariants and summary     run.c     the phases of one run */
#ifndef BT_CHAOS_H
#define BT_CHAOS_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "harness.h"
#include "kafka.h"

#define CHAOS_STEPS          3 /* steps of the workload's workflow (tests/plugins/chaos.c) */
#define CHAOS_MAX_PROCS      32 /* workers + schedulers */
#define CHAOS_MAX_PASSED_ENV 8  /* BATON_KAFKA_* passed on to the programs */
#define CHAOS_POISON_ID      "chaos-poison"
#define CHAOS_CRASH_ID       "chaos-crash-code"
#define CHAOS_WARMUP_ID      "chaos-warmup"
#define CHAOS_ID_PREFIX      "wf-" /* instance i is "wf-<i>" */
#define CHAOS_MAX_OUTAGES    64    /* redis or broker down: kept for the stall check */

/* The fault kinds: enum value, flag name, what one injection does. */
#define CHAOS_FAULTS(X)                                                                  \
    X(KILL_WORKER, "kill-worker", "SIGKILL a random worker, start it --restart-after")   \
    X(KILL_SCHEDULER, "kill-scheduler",                                                  \
      "SIGKILL a random scheduler, start it --restart-after")                            \
    X(PAUSE_WORKER, "pause-worker",                                                      \
      "SIGSTOP a random worker, SIGCONT --pause-for later")                              \
    X(PAUSE_SCHEDULER, "pause-scheduler",                                                \
      "SIGSTOP a random scheduler, SIGCONT --pause-for later")                           \
    X(REDIS_KILL, "redis-kill", "SIGKILL redis-server, start it --redis-down-for later") \
    X(REDIS_SHUTDOWN, "redis-shutdown",                                                  \
      "SHUTDOWN redis-server, start it --redis-down-for later")                          \
    X(REDIS_PAUSE, "redis-pause",                                                        \
      "SIGSTOP redis-server (it hangs, its connections open), SIGCONT "                  \
      "--redis-pause-for "                                                               \
      "later")                                                                           \
    X(BROKER_DOWN, "broker-down", "take the Kafka broker down for --broker-down-for")    \
    X(REQUEST_ERRORS, "request-errors",                                                  \
      "fail the next produce, fetch, offset-commit and heartbeat requests")              \
    X(LATENCY, "latency",                                                                \
      "add --latency-ms to every broker round trip for --latency-for")                   \
    X(POISON, "poison", "produce a 1,040,078-byte start (over the payload limit)")       \
    X(CRASH_CODE, "crash-code",                                                          \
      "start an instance whose workflow code raises SIGSEGV: it crashes two workers, "   \
      "then is blocked")                                                                 \
    X(ROLLING, "rolling", "restart every worker in turn: SIGTERM, wait, start")

enum chaos_fault {
#define X(e, name, help) CHAOS_##e,
    CHAOS_FAULTS(X)
#undef X
        CHAOS_FAULT__COUNT
};

/* Milliseconds of CLOCK_REALTIME: Kafka timestamps are wall-clock times. */
static inline int64_t chaos_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- opts.c ---- */

/* An injection every every_ms, the first first_ms after the load starts, while
 * the chaos lasts. every_ms 0: off. */
struct chaos_every {
    int64_t every_ms, first_ms;
};

struct chaos_opts {
    int instances, rate; /* rate: starts per second, 0: as fast as possible */
    int sleep_ms;        /* a durable sleep between steps 1 and 2, 0: none */
    int64_t duration_ms; /* faults are injected this long after the load starts */
    int workers, schedulers, partitions;
    char plugin[64];
    struct chaos_every fault[CHAOS_FAULT__COUNT];
    int64_t restart_after_ms, pause_ms, redis_down_ms, redis_pause_ms, broker_down_ms,
        latency_for_ms;
    int latency_ms;
    int64_t drain_ms;   /* how long the results may take after the chaos */
    int64_t stall_ms;   /* no result this long while some are due: a stall */
    int expect;         /* distinct results required (default: instances) */
    int max_exec;       /* executions per step allowed (0: derived) */
    int max_duplicates; /* duplicate results allowed */
    double min_ratio;   /* tput under faults / baseline's, 0: not checked */
    int baseline;       /* run without faults first, for the ratio */
    int eager;          /* workers' --eager: 0 (their default) or 1 */
    unsigned seed;
};

/* Fills o from argv (flags and presets, in order). Returns 0, 1 for --help
 * (usage printed), or -1 with a message on stderr. */
int chaos_opts_parse(struct chaos_opts *o, int argc, char **argv);
/* Flag name of a fault kind ("kill-worker"). */
const char *chaos_fault_name(enum chaos_fault f);
/* Whether any fault that kills, pauses or restarts a process is on. */
bool chaos_opts_kills(const struct chaos_opts *o);

/* ---- the run: what every module sees ---- */

enum chaos_role { CHAOS_WORKER, CHAOS_SCHEDULER };
enum chaos_state {
    CHAOS_UP,
    CHAOS_PAUSED,   /* SIGSTOPped: due is when it gets SIGCONT */
    CHAOS_DOWN,     /* dead: due is when it is started again */
    CHAOS_STOPPING, /* SIGTERMed (rolling restart): due is when it gets SIGKILL */
};

struct chaos_proc {
    enum chaos_role role;
    enum chaos_state state;
    pid_t pid;
    int64_t due;
};

/* What one instance went through; O(1) per instance. */
struct chaos_inst {
    int32_t started_ms; /* when its start was produced, ms after t0; -1: not yet */
    int32_t first_ms;   /* its first result's Kafka timestamp, ms after t0; -1: none */
    uint16_t results;   /* result messages (saturating) */
    uint8_t failed;     /* a result whose status was not "completed" */
    uint8_t exec[CHAOS_STEPS]; /* executions of each step (saturating) */
};

/* A reader of every partition of one topic from its beginning, without a
 * group (no rebalance can make it read anything twice). */
struct chaos_reader {
    rd_kafka_t *rk;
    int partitions;
    int64_t *next; /* per partition: the next offset wanted */
    bool *at_end;  /* per partition: the last message seen was the end */
};

struct chaos_run {
    const struct chaos_opts *opts;
    const char *name; /* "chaos" or "baseline" */
    bool faults;      /* inject the schedule */
    unsigned seed;    /* rand_r state for the fault targets */

    /* stack.c */
    struct bt_test_redis redis;
    bool redis_up;
    bool redis_paused; /* SIGSTOPped: up again by SIGCONT */
    struct bt_test_kafka kafka;
    char prefix[64], dir[256], log[320];
    char env[6 + CHAOS_MAX_PASSED_ENV]
            [320]; /* the stack's, then BATON_KAFKA_* passed on */
    const char *envp[6 + CHAOS_MAX_PASSED_ENV + 1];
    int log_fd;

    /* procs.c */
    struct chaos_proc procs[CHAOS_MAX_PROCS];
    int n_procs;
    int crashes;      /* exits nobody asked for */
    int unclean_stop; /* a SIGTERM that did not end the process with status 0 */

    /* faults.c; times are bt_test_now_ms() */
    int64_t t0, chaos_end, t0_wall;
    int64_t next_fault[CHAOS_FAULT__COUNT];
    int injected[CHAOS_FAULT__COUNT], skipped[CHAOS_FAULT__COUNT];
    int64_t broker_up_at, rtt_off_at, redis_up_at;
    /* when redis or the broker was down, ms since t0 (to: INT64_MAX while it
     * lasts): no progress is expected then, and the stall check leaves those
     * seconds out (report.c) */
    struct chaos_outage {
        int64_t from, to;
    } outages[CHAOS_MAX_OUTAGES];
    int n_outages, redis_outage, broker_outage; /* -1: none open */
    int rolling_next;   /* index among the workers, -1: not rolling */
    pid_t rolling_pid;  /* the worker SIGTERMed for it */
    int64_t rolling_at; /* when the next step may go */

    /* load.c */
    rd_kafka_t *load_rk;
    struct bt_kafka_batch *batches; /* one per instance: its start's delivery */
    pthread_t load_thread;
    bool load_started;
    atomic_int produced;
    atomic_bool load_done;
    int lost_starts; /* starts whose delivery failed twice */
    rd_kafka_t *poison_rk;
    struct bt_kafka_batch poison_batch;
    bool poison_sent;
    struct bt_kafka_batch crash_batch; /* the crashing start's, on poison_rk */
    bool crash_sent;

    /* count.c */
    struct chaos_inst *inst;
    int distinct, raw_results, other_results;
    bool warmed_up;
    int dead_letters, poison_dead;
    char dead_reason[200];         /* the first unexpected dead letter's */
    char fail_reason[300];         /* the first failed instance's error */
    long executions, exec_retries; /* execution lines; those of attempt > 1 */
    int *exec_per_s;               /* executions in each second after t0, up to end_ms */
    int n_seconds;
    int64_t end_ms;          /* when counting stopped, ms after t0 */
    int crash_code_crashes;  /* workers the crashing code killed (their log lines) */
    char crash_code_end[64]; /* its instance's status and error type at the end */

    /* run.c */
    int64_t next_progress;
    size_t assigned_lines; /* "partitions assigned" lines in the log */
    int64_t assigned_at;   /* when their count last changed */
};

/* ---- stack.c ---- */

/* Starts redis (AOF, loopback) and the mock cluster, names the log
 * (<dir>/<name>.log) and the programs' environment. Returns 0 or -1. */
int chaos_stack_start(struct chaos_run *r, const char *dir);
/* Stops both; keeps redis's own log beside ours. Idempotent. */
void chaos_stack_stop(struct chaos_run *r);
/* Takes redis down: SIGKILL, or SHUTDOWN as an operator would. */
void chaos_stack_redis_down(struct chaos_run *r, bool shutdown);
/* SIGSTOP: redis hangs, its connections open. */
void chaos_stack_redis_pause(struct chaos_run *r);
/* Starts it again on its port and AOF, or resumes a paused one (SIGCONT).
 * Returns 0 or -1. */
int chaos_stack_redis_up(struct chaos_run *r);
/* A reply to a command on a fresh connection (NULL when redis is away); the
 * caller frees it with freeReplyObject(). */
void *chaos_stack_redis(struct chaos_run *r, const char *fmt, ...);
/* A configuration for the driver's own Kafka clients; kafka_prop ("name=value")
 * may be NULL. Released with bt_config_release(). Returns 0 or -1. */
int chaos_stack_config(struct chaos_run *r, struct bt_config *cfg,
                       const char *kafka_prop);
/* Appends one line from the driver to the run's log. */
void chaos_note(struct chaos_run *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- procs.c ---- */

/* Starts opts->workers workers and opts->schedulers schedulers. Returns 0 or -1. */
int chaos_procs_start(struct chaos_run *r);
/* A random process of role in state UP, or -1. */
int chaos_procs_pick(struct chaos_run *r, enum chaos_role role);
void chaos_procs_kill(struct chaos_run *r, int i, int64_t now);
void chaos_procs_pause(struct chaos_run *r, int i, int64_t now);
void chaos_procs_term(struct chaos_run *r, int i, int64_t now);
/* Notices unexpected exits and carries out what is due (restart, SIGCONT,
 * SIGKILL after a SIGTERM that took too long). */
void chaos_procs_tick(struct chaos_run *r, int64_t now);
/* The end of the chaos: everything paused or down is brought back now. */
void chaos_procs_restore(struct chaos_run *r, int64_t now);
/* How many are UP. */
int chaos_procs_up(const struct chaos_run *r, enum chaos_role role);
/* SIGTERMs every process and waits for each; counts unclean stops. */
void chaos_procs_stop(struct chaos_run *r);

/* ---- faults.c ---- */

/* Injects what is due between t0 and chaos_end and ends what has lasted. */
void chaos_faults_tick(struct chaos_run *r, int64_t now);
/* Ends every fault: broker up, no latency or request errors, redis up,
 * processes back. */
void chaos_faults_end(struct chaos_run *r, int64_t now);

/* ---- load.c ---- */

/* The producers and the per-instance delivery counts. Returns 0 or -1. */
int chaos_load_init(struct chaos_run *r);
/* Starts the thread that produces opts->instances starts at opts->rate from
 * r->t0 on. Returns 0 or -1. */
int chaos_load_start(struct chaos_run *r);
/* Produces one start of the workload for id and waits for it. Returns 0 or -1. */
int chaos_load_one(struct chaos_run *r, const char *id);
/* Waits for the thread (it has produced everything and had every delivery
 * confirmed, re-producing a start whose delivery failed once). */
void chaos_load_join(struct chaos_run *r);
/* Produces the poison start without waiting for its delivery. */
int chaos_load_poison(struct chaos_run *r);
/* Produces the start whose workflow code crashes, without waiting. */
int chaos_load_crash_code(struct chaos_run *r);
/* Serves the poison producer's delivery reports; at the end, waits for them. */
void chaos_load_poll(struct chaos_run *r, int timeout_ms);
void chaos_load_release(struct chaos_run *r);

/* ---- count.c ---- */

/* The per-instance tallies, all unknown. Returns 0 or -1. */
int chaos_count_init(struct chaos_run *r);
void chaos_count_release(struct chaos_run *r);
int chaos_reader_open(struct chaos_reader *rd, struct chaos_run *r, const char *suffix);
void chaos_reader_close(struct chaos_reader *rd);
/* Whether every partition has been read up to its end. */
bool chaos_reader_at_end(const struct chaos_reader *rd);
/* Reads what arrived on <prefix>.results for up to timeout_ms into the tallies. */
void chaos_count_results(struct chaos_run *r, struct chaos_reader *rd, int timeout_ms);
/* Reads <prefix>.dlq to its end (or deadline_ms): the poison and the others. */
void chaos_count_dead_letters(struct chaos_run *r, int deadline_ms);
/* Counts the workload's execution lines in the log. Returns 0 or -1. */
int chaos_count_executions(struct chaos_run *r);
/* The crashing code's toll (log lines) and its instance's end (redis, up to
 * 30 s for it to be blocked): crash_code_crashes, crash_code_end. */
void chaos_count_crash_code(struct chaos_run *r);
/* Instance index of "wf-<i>", or -1. */
int chaos_count_index(const struct chaos_run *r, const char *id);

/* ---- report.c ---- */

/* Results per second over the whole run, for the baseline ratio. */
double chaos_report_tput(const struct chaos_run *r);
/* Prints the digest (stderr) and the summary line (stdout). baseline may be
 * NULL. Returns true when every invariant holds. */
bool chaos_report(struct chaos_run *r, const struct chaos_run *baseline);

/* ---- run.c ---- */

extern volatile sig_atomic_t chaos_interrupted;
/* One run: the stack, the load, the faults (when r->faults), the drain, the
 * counts. r->opts and r->name are set by the caller. Returns 0 when it ran to
 * the end (whatever the invariants say), -1 when it could not. */
int chaos_run(struct chaos_run *r, const char *dir);

/* ---- attempts.c ---- */

/* The exit status of a run that died of an abort. */
#define CHAOS_EXIT_ABORT 3
/* Runs body(argc, argv) in a child and returns its exit status; a run that
 * the embedded Kafka cluster's own assertion aborted is run again (at most 5
 * attempts), any other abort is 2: no verdict. */
int chaos_attempts(int (*body)(int, char **), int argc, char **argv);
/* Frees what a run kept for its report. */
void chaos_run_release(struct chaos_run *r);

#endif
