/* `baton bench [WORKLOAD...]`: runs the workloads of the benchmark (chain,
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
#define _GNU_SOURCE /* nftw, asprintf */
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

/* ---- workloads ---- */

enum kind { IDLE, CHAIN, LATENCY, RETRY, FANOUT, LIMITED };

struct workload {
    const char *name;
    const char *type;  /* workflow type in bench.so */
    int workflows;     /* default W */
    bool sequential;   /* one instance at a time */
    const char *about; /* for --help */
};

static const struct workload workloads[] = {
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
};
#define N_WORKLOADS (sizeof(workloads) / sizeof(workloads[0]))

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

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- processes and their CPU, from /proc ---- */

/* comm, ppid and utime + stime (clock ticks) of /proc/<path>/stat. */
static int read_stat(const char *path, char *comm, size_t n, pid_t *ppid,
                     unsigned long long *ticks)
{
    char buf[1024], *open_paren, *close_paren;
    unsigned long long utime, stime;
    int fd = open(path, O_RDONLY | O_CLOEXEC), pp;
    ssize_t len;

    if (fd < 0)
        return -1;
    len = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (len <= 0)
        return -1;
    buf[len] = '\0';
    if (!(open_paren = strchr(buf, '(')) || !(close_paren = strrchr(buf, ')')))
        return -1;
    if (comm)
        snprintf(comm, n, "%.*s", (int)(close_paren - open_paren - 1), open_paren + 1);
    /* after the comm: state ppid pgrp session tty tpgid flags minflt cminflt
     * majflt cmajflt utime stime */
    if (sscanf(close_paren + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
               &pp, &utime, &stime) != 3)
        return -1;
    if (ppid)
        *ppid = pp;
    if (ticks)
        *ticks = utime + stime;
    return 0;
}

/* One role of the stack: the processes that play it. */
struct role {
    const char *name;
    pid_t pids[MAX_PIDS];
    int n;
};

enum { R_WORKER, R_SCHEDULER, R_REDIS, R_BROKER, R_DRIVER, N_ROLES };
static const char *const role_names[N_ROLES] = {"worker", "scheduler", "redis", "broker",
                                                "driver"};

/* Whether /proc/<pid>/<file> (NUL-separated strings) contains needle. */
static bool proc_mentions(const char *pid, const char *file, const char *needle)
{
    char path[300], buf[65536];
    int fd;
    ssize_t len;

    snprintf(path, sizeof(path), "/proc/%s/%s", pid, file);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return false;
    len = read(fd, buf, sizeof(buf));
    close(fd);
    return len > 0 && memmem(buf, (size_t)len, needle, strlen(needle));
}

/* Processes named comm that are children of parent, or (parent 0) that name
 * brokers in their command line or environment: the ones serving our stack,
 * not whatever else runs here. */
static int find_procs(const char *comm, pid_t parent, const char *brokers, pid_t *pids,
                      int max)
{
    DIR *dir = opendir("/proc");
    struct dirent *de;
    int n = 0;

    if (!dir)
        return 0;
    while ((de = readdir(dir)) && n < max) {
        char path[300], name[64];
        pid_t ppid;
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
        if (read_stat(path, name, sizeof(name), &ppid, NULL) || strcmp(name, comm))
            continue;
        if (parent ? ppid == parent
                   : proc_mentions(de->d_name, "cmdline", brokers) ||
                         proc_mentions(de->d_name, "environ", brokers))
            pids[n++] = (pid_t)atoi(de->d_name);
    }
    closedir(dir);
    return n;
}

/* Nanoseconds the main thread of pid ran and waited, runnable, for a CPU
 * (/proc/<pid>/schedstat): a process that waits as long as it runs did not
 * get the CPU it could have used. */
static void read_schedstat(pid_t pid, unsigned long long *run_ns,
                           unsigned long long *wait_ns)
{
    char path[64];
    FILE *f;

    *run_ns = *wait_ns = 0;
    snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
    if (!(f = fopen(path, "r")))
        return;
    if (fscanf(f, "%llu %llu", run_ns, wait_ns) != 2)
        *run_ns = *wait_ns = 0;
    fclose(f);
}

struct thread_cpu {
    pid_t tid;
    char comm[24];
    unsigned long long ticks;
};

/* The threads of pid with their CPU; returns how many (at most max). */
static int read_threads(pid_t pid, struct thread_cpu *t, int max)
{
    char path[300];
    DIR *dir;
    struct dirent *de;
    int n = 0;

    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    if (!(dir = opendir(path)))
        return 0;
    while ((de = readdir(dir)) && n < max) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%d/task/%s/stat", (int)pid, de->d_name);
        if (read_stat(path, t[n].comm, sizeof(t[n].comm), NULL, &t[n].ticks) == 0)
            t[n++].tid = (pid_t)atoi(de->d_name);
    }
    closedir(dir);
    return n;
}

/* busy and total jiffies of the whole machine */
static void machine_cpu(unsigned long long *busy, unsigned long long *total)
{
    unsigned long long v[10] = {0};
    FILE *f = fopen("/proc/stat", "r");

    *busy = *total = 0;
    if (!f)
        return;
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
               &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]) >= 8) {
        for (int i = 0; i < 8; i++) /* guest time is already in user */
            *total += v[i];
        *busy = *total - v[3] - v[4]; /* minus idle and iowait */
    }
    fclose(f);
}

/* ---- the stack: `baton dev` with a temporary home ---- */

struct stack {
    pid_t dev;                  /* 0: attached to services we did not start */
    pid_t extra[EXTRA_WORKERS]; /* baton-workers we started beside dev's */
    int n_extra;
    char home[PATH_MAX];
    char log[PATH_MAX + 16];
    struct role roles[N_ROLES];
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Stops the baton-workers started beside baton dev's (SIGTERM; SIGKILL after
 * 10 s) and drops them from the worker role. */
static void extra_stop(struct stack *s)
{
    for (int i = 0; i < s->n_extra; i++)
        if (s->extra[i] > 0)
            kill(s->extra[i], SIGTERM); /* all at once, then each waited for */
    for (int i = 0; i < s->n_extra; i++)
        bt_proc_stop(s->extra[i], 10000, false);
    s->roles[R_WORKER].n -= s->n_extra;
    s->n_extra = 0;
}

static void stack_stop(struct stack *s)
{
    extra_stop(s);
    if (s->dev > 0) {
        /* baton dev stops its children (SIGTERM, SIGKILL after 5 s), then exits */
        bt_proc_stop(s->dev, 15000, true);
        s->dev = 0;
    }
    if (s->home[0]) {
        nftw(s->home, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        s->home[0] = '\0';
    }
}

static void print_log_tail(const char *path)
{
    char line[1024];
    long at;
    FILE *f = fopen(path, "r");

    if (!f)
        return;
    fseek(f, 0, SEEK_END);
    at = ftell(f);
    fseek(f, at > 4000 ? at - 4000 : 0, SEEK_SET);
    if (at > 4000 && !fgets(line, sizeof(line), f)) /* skip a partial line */
        line[0] = '\0';
    while (fgets(line, sizeof(line), f))
        fprintf(stderr, "  | %s", line);
    fclose(f);
}

/* Reads BATON_BROKERS and BATON_REDIS from the address file of our baton dev. */
static int read_addresses(struct bt_config *cfg, const char *path)
{
    char line[1024];
    FILE *f = fopen(path, "r");
    int found = 0;

    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        char **slot = NULL;
        line[strcspn(line, "\n")] = '\0';
        if (!strncmp(line, "BATON_BROKERS=", 14))
            slot = &cfg->brokers;
        else if (!strncmp(line, "BATON_REDIS=", 12))
            slot = &cfg->redis;
        if (!slot)
            continue;
        free(*slot);
        *slot = strdup(strchr(line, '=') + 1);
        found++;
    }
    fclose(f);
    return found == 2 ? 0 : -1;
}

extern char **environ;

/* argv and environment of `baton dev` (worker false) or of a baton-worker
 * beside it: our resolved settings as flags, no inherited BATON_* variable
 * (BATON_PLUGINS would load a plugin twice). A worker finds the addresses in
 * the dev.env of BATON_HOME, as scripts/demo's do. */
/* Starts argv with its output in log, in its own process group (a Ctrl-C
 * reaches the driver, which stops it in order), dying with the driver.
 * Returns the pid, or -1 having said why. */
static pid_t spawn_logged(char **argv, char **envp, const char *log)
{
    const struct bt_spawn how = {.log = log, .own_group = true, .deathsig = SIGTERM};
    pid_t pid = bt_proc_spawn(argv, envp, &how);

    if (pid < 0)
        fprintf(stderr, "baton bench: cannot start %s: %s\n", argv[0], strerror(errno));
    return pid;
}

static char **dev_argv(const struct bt_config *cfg, const char *self, const char *home,
                       const char *plugin, bool worker)
{
    char conc[16], parts[16];
    /* 16 fixed arguments at most, the plugins', the NULL (the kafka
     * properties go in the environment: dev_envp) */
    size_t n = 0, cap = 17 + 2 * cfg->n_plugins;
    char **argv = calloc(cap, sizeof(*argv));

    if (!argv)
        return NULL;
    snprintf(conc, sizeof(conc), "%d", cfg->concurrency);
    snprintf(parts, sizeof(parts), "%d", cfg->partitions);
    argv[n++] = strdup(self);
    if (!worker) {
        argv[n++] = strdup("dev");
        argv[n++] = strdup("--home");
        argv[n++] = strdup(home);
        argv[n++] = strdup("--partitions");
        argv[n++] = strdup(parts);
    }
    /* a worker's info lines tell when it owns partitions */
    argv[n++] = strdup("--log-level");
    argv[n++] = strdup(worker ? "info" : "warn");
    argv[n++] = strdup("--concurrency");
    argv[n++] = strdup(conc);
    argv[n++] = strdup("--queues");
    argv[n++] = strdup(cfg->queues);
    argv[n++] = strdup(cfg->eager ? "--eager=1" : "--eager=0");
    if (asprintf(&argv[n++], "--workflow-threads=%d", cfg->workflow_threads) < 0)
        argv[n - 1] = NULL;
    if (plugin) {
        argv[n++] = strdup("--plugin");
        argv[n++] = strdup(plugin);
    }
    for (size_t i = 0; i < cfg->n_plugins; i++) {
        argv[n++] = strdup("--plugin");
        argv[n++] = strdup(cfg->plugins[i]);
    }
    for (size_t i = 0; i < n; i++)
        if (!argv[i])
            return NULL; /* out of memory at start-up: the process exits anyway */
    return argv;
}

/* "BATON_KAFKA_<NAME>=value" of a "name=value" property (malloc'ed; NULL
 * when out of memory), as common/config.c reads it back. */
static char *kafka_var(const char *prop)
{
    const char *eq = strchr(prop, '=');
    size_t len = eq ? (size_t)(eq - prop) : strlen(prop);
    char *var = NULL;

    if (asprintf(&var, "BATON_KAFKA_%.*s=%s", (int)len, prop, eq ? eq + 1 : "") < 0)
        return NULL;
    for (size_t i = 12; i < 12 + len; i++)
        var[i] = var[i] == '.' ? '_' : (char)toupper((unsigned char)var[i]);
    return var;
}

/* The environment without the inherited BATON_* variables, with home_var
 * (NULL, or "BATON_HOME=..." for a worker) and the kafka properties: they
 * may hold secrets (a SASL password), and a command line is anybody's to
 * read in ps. Every string is a copy: free with free_strv. */
static char **dev_envp(const struct bt_config *cfg, const char *home_var)
{
    size_t n = 0, k = 0;
    char **envp;

    while (environ[n])
        n++;
    if (!(envp = calloc(n + 2 + cfg->n_kafka, sizeof(*envp))))
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "BATON_", 6) && !(envp[k++] = strdup(environ[i])))
            goto oom;
    if (home_var && !(envp[k++] = strdup(home_var)))
        goto oom;
    for (size_t i = 0; i < cfg->n_kafka; i++)
        if (!(envp[k++] = kafka_var(cfg->kafka[i])))
            goto oom;
    return envp;
oom:
    bt_strv_free(envp);
    return NULL;
}

/* The bench plugin next to this binary: <bin>/../plugins/bench.so */
static int find_plugin(char *self, size_t n_self, char *plugin, size_t n_plugin)
{
    ssize_t len = readlink("/proc/self/exe", self, n_self - 1);
    char dir[PATH_MAX], *slash;

    if (len <= 0)
        return -1;
    self[len] = '\0';
    snprintf(dir, sizeof(dir), "%s", self);
    if (!(slash = strrchr(dir, '/')))
        return -1;
    *slash = '\0';
    snprintf(plugin, n_plugin, "%s/../plugins/bench.so", dir);
    return 0;
}

static int stack_start(struct stack *s, struct bt_config *cfg)
{
    char self[PATH_MAX], plugin[PATH_MAX + 32], env_path[PATH_MAX + 16];
    char **argv = NULL, **envp = NULL;
    double deadline;
    pid_t pid;
    int status, ret = BT_EXIT_FAIL;

    if (find_plugin(self, sizeof(self), plugin, sizeof(plugin))) {
        fprintf(stderr, "baton bench: cannot find my own binary\n");
        return ret;
    }
    if (!cfg->n_plugins && access(plugin, R_OK)) {
        fprintf(stderr, "baton bench: %s: %s (build it, or give --plugin)\n", plugin,
                strerror(errno));
        return ret;
    }
    snprintf(s->home, sizeof(s->home), "/tmp/baton-bench.XXXXXX");
    if (!mkdtemp(s->home)) {
        fprintf(stderr, "baton bench: cannot create a temporary home: %s\n",
                strerror(errno));
        s->home[0] = '\0';
        return ret;
    }
    snprintf(s->log, sizeof(s->log), "%s/dev.log", s->home);
    snprintf(env_path, sizeof(env_path), "%s/dev.env", s->home);
    argv = dev_argv(cfg, self, s->home, cfg->n_plugins ? NULL : plugin, false);
    envp = dev_envp(cfg, NULL);
    if (!argv || !envp)
        goto out;

    if ((pid = spawn_logged(argv, envp, s->log)) < 0)
        goto out;
    s->dev = pid;

    deadline = now_s() + START_S;
    while (access(env_path, R_OK)) {
        if (waitpid(pid, &status, WNOHANG) == pid || now_s() > deadline || interrupted) {
            if (waitpid(pid, &status, WNOHANG) == pid)
                s->dev = 0;
            fprintf(stderr, "baton bench: `baton dev` did not start; its log:\n");
            print_log_tail(s->log);
            goto out;
        }
        bt_clock_sleep_ms(20);
    }
    if (read_addresses(cfg, env_path)) {
        fprintf(stderr, "baton bench: cannot read %s\n", env_path);
        goto out;
    }
    cfg->embedded = 1;
    /* its children: redis-server first, then the scheduler and the worker */
    while ((s->roles[R_WORKER].n =
                find_procs("baton-worker", pid, NULL, s->roles[R_WORKER].pids, 1)) == 0 ||
           (s->roles[R_SCHEDULER].n = find_procs("baton-scheduler", pid, NULL,
                                                 s->roles[R_SCHEDULER].pids, 1)) == 0 ||
           (s->roles[R_REDIS].n =
                find_procs("redis-server", pid, NULL, s->roles[R_REDIS].pids, 1)) == 0) {
        if (now_s() > deadline || interrupted) {
            fprintf(stderr,
                    "baton bench: `baton dev` did not start its children; its log:\n");
            print_log_tail(s->log);
            goto out;
        }
        bt_clock_sleep_ms(50);
    }
    s->roles[R_BROKER].pids[0] = pid;
    s->roles[R_BROKER].n = 1;
    ret = BT_EXIT_OK;
out:
    bt_strv_free(argv);
    bt_strv_free(envp);
    return ret;
}

/* Whether a worker's log says it owns partitions in both roles (the workflow
 * role's line and the activity role's "task ..." one, count > 0), in logfmt
 * (msg="partitions assigned" count=4) or JSON ("count":"4"). */
static bool owns_partitions(const char *path)
{
    static const char *const needles[] = {"partitions assigned\" count=",
                                          "partitions assigned\",\"count\":\""};
    char line[1024];
    bool wf = false, task = false;
    FILE *f = fopen(path, "r");

    if (!f)
        return false;
    while (fgets(line, sizeof(line), f)) {
        const char *p = NULL, *count = NULL;
        for (size_t i = 0; i < 2 && !p; i++)
            if ((p = strstr(line, needles[i])))
                count = p + strlen(needles[i]);
        if (!p || count[0] < '1' || count[0] > '9')
            continue;
        if (p - line >= 5 && !strncmp(p - 5, "task ", 5))
            task = true;
        else
            wf = true;
    }
    fclose(f);
    return wf && task;
}

static void extra_log(const struct stack *s, int i, char *buf, size_t n)
{
    snprintf(buf, n, "%s/worker-%d.log", s->home, i + 2);
}

/* Starts EXTRA_WORKERS baton-workers beside baton dev's, with its settings
 * and addresses (dev.env), and waits until each owns partitions: joining the
 * consumer groups makes the embedded cluster rebalance (~5 s). */
static int extra_start(struct stack *s, const struct bt_config *cfg)
{
    char self[PATH_MAX], plugin[PATH_MAX + 32], exe[PATH_MAX + 32];
    char home_var[PATH_MAX + 16], log[PATH_MAX + 32], *slash;
    char **argv = NULL, **envp = NULL;
    pid_t pid;
    double deadline;
    int ret = -1, status;

    if (!s->dev || find_plugin(self, sizeof(self), plugin, sizeof(plugin)))
        return -1;
    snprintf(exe, sizeof(exe), "%s", self);
    slash = strrchr(exe, '/');
    snprintf(slash + 1, sizeof(exe) - (size_t)(slash + 1 - exe), "baton-worker");
    snprintf(home_var, sizeof(home_var), "BATON_HOME=%s", s->home);
    argv = dev_argv(cfg, exe, s->home, cfg->n_plugins ? NULL : plugin, true);
    envp = dev_envp(cfg, home_var);
    if (!argv || !envp)
        goto out;
    for (int i = 0; i < EXTRA_WORKERS; i++) {
        extra_log(s, i, log, sizeof(log));
        if ((pid = spawn_logged(argv, envp, log)) < 0)
            goto out;
        s->extra[s->n_extra++] = pid;
        s->roles[R_WORKER].pids[s->roles[R_WORKER].n++] = pid;
    }
    deadline = now_s() + 2 * START_S;
    for (int i = 0; i < s->n_extra; i++) {
        extra_log(s, i, log, sizeof(log));
        while (!owns_partitions(log)) {
            bool exited = waitpid(s->extra[i], &status, WNOHANG) == s->extra[i];
            if (exited || now_s() > deadline || interrupted) {
                if (exited)
                    s->extra[i] = 0; /* reaped: its pid is no longer ours */
                fprintf(stderr, "baton bench: baton-worker %s; its log (%s):\n",
                        exited ? "exited" : "got no partitions in time", log);
                print_log_tail(log);
                goto out;
            }
            bt_clock_sleep_ms(50);
        }
    }
    ret = 0;
out:
    bt_strv_free(argv);
    bt_strv_free(envp);
    return ret;
}

/* --attach: the processes of this machine that play each role, if any. */
static void stack_attach(struct stack *s, const struct bt_config *cfg, struct bt_redis *r)
{
    redisReply *reply = bt_redis_command(r, "INFO server");
    const char *p;

    s->roles[R_WORKER].n =
        find_procs("baton-worker", 0, cfg->brokers, s->roles[R_WORKER].pids, MAX_PIDS);
    s->roles[R_SCHEDULER].n = find_procs("baton-scheduler", 0, cfg->brokers,
                                         s->roles[R_SCHEDULER].pids, MAX_PIDS);
    if (reply && reply->type == REDIS_REPLY_STRING &&
        (p = strstr(reply->str, "process_id:"))) {
        char path[64], comm[64];
        pid_t pid = (pid_t)atoi(p + 11);
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        if (read_stat(path, comm, sizeof(comm), NULL, NULL) == 0 &&
            !strcmp(comm, "redis-server")) {
            s->roles[R_REDIS].pids[0] = pid;
            s->roles[R_REDIS].n = 1;
        }
    }
    freeReplyObject(reply);
}

/* ---- probes: what a workload cost ---- */

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

/* INFO commandstats: calls of each command, also those made by scripts. And
 * INFO stats' total_writes_processed: Redis writes the replies to a client
 * once per batch of commands read from it, so this counts round trips (of
 * every client: the scheduler's polling too, see the idle line). */
static void read_cmdstats(struct bench *b, struct snapshot *snap)
{
    redisReply *reply = bt_redis_command(bt_store_redis(b->store), "INFO commandstats");
    char *save = NULL, *text, *p;

    snap->n_cmds = 0;
    snap->round_trips = 0;
    if (!reply || reply->type != REDIS_REPLY_STRING)
        goto out;
    text = strdup(reply->str);
    for (char *line = strtok_r(text, "\r\n", &save); line && snap->n_cmds < MAX_CMDS;
         line = strtok_r(NULL, "\r\n", &save)) {
        struct cmdstat *c = &snap->cmds[snap->n_cmds];
        char *colon = strchr(line, ':');
        if (strncmp(line, "cmdstat_", 8) || !colon)
            continue;
        snprintf(c->name, sizeof(c->name), "%.*s", (int)(colon - line - 8), line + 8);
        if (sscanf(colon + 1, "calls=%llu,usec=%llu", &c->calls, &c->usec) == 2 &&
            strcmp(c->name, "info"))
            snap->n_cmds++;
    }
    free(text);
    freeReplyObject(reply);
    reply = bt_redis_command(bt_store_redis(b->store), "INFO stats");
    if (reply && reply->type == REDIS_REPLY_STRING &&
        (p = strstr(reply->str, "total_writes_processed:")))
        snap->round_trips = strtoull(p + 23, NULL, 10);
out:
    freeReplyObject(reply);
}

/* Every topic of our prefix, with the sum of its partitions' high watermarks:
 * how many messages were ever produced to it. */
static void read_topics(struct bench *b, struct snapshot *snap)
{
    const struct rd_kafka_metadata *md = NULL;
    size_t plen = strlen(b->cfg->prefix);

    snap->n_topics = 0;
    if (rd_kafka_metadata(b->producer, 1, NULL, &md, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    for (int i = 0; i < md->topic_cnt && snap->n_topics < MAX_TOPICS; i++) {
        const rd_kafka_metadata_topic_t *t = &md->topics[i];
        struct topic_count *tc = &snap->topics[snap->n_topics];
        if (strncmp(t->topic, b->cfg->prefix, plen) || t->topic[plen] != '.')
            continue;
        snprintf(tc->name, sizeof(tc->name), "%s", t->topic);
        tc->messages = 0;
        for (int p = 0; p < t->partition_cnt; p++) {
            int64_t lo, hi;
            if (rd_kafka_query_watermark_offsets(
                    b->producer, t->topic, t->partitions[p].id, &lo, &hi, 5000) == 0)
                tc->messages += hi;
        }
        snap->n_topics++;
    }
    rd_kafka_metadata_destroy(md);
}

static void take_snapshot(struct bench *b, struct snapshot *snap, bool services)
{
    if (services) {
        read_cmdstats(b, snap);
        read_topics(b, snap);
    }
    for (int r = 0; r < N_ROLES; r++) {
        const struct role *role = &b->stack.roles[r];
        unsigned long long run_ns;
        snap->ticks[r] = 0;
        snap->wait_ns[r] = 0;
        if (role->n)
            read_schedstat(role->pids[0], &run_ns, &snap->wait_ns[r]);
        for (int i = 0; i < role->n; i++) {
            char path[64];
            unsigned long long t;
            snprintf(path, sizeof(path), "/proc/%d/stat", (int)role->pids[i]);
            if (read_stat(path, NULL, 0, NULL, &t) == 0)
                snap->ticks[r] += t;
        }
    }
    snap->n_threads[0] = snap->n_threads[1] = 0;
    if (b->stack.roles[R_WORKER].n)
        snap->n_threads[0] =
            read_threads(b->stack.roles[R_WORKER].pids[0], snap->threads[0], MAX_THREADS);
    if (b->stack.roles[R_BROKER].n)
        snap->n_threads[1] =
            read_threads(b->stack.roles[R_BROKER].pids[0], snap->threads[1], MAX_THREADS);
    machine_cpu(&snap->busy, &snap->total);
    snap->t = now_s();
}

/* ---- the driver ---- */

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

static void run_release(struct run *run)
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

static int run_prepare(struct bench *b, struct run *run, const struct workload *w,
                       const char *tag, int n, int k)
{
    static const char pad[] =
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

    memset(run, 0, sizeof(*run));
    run->w = w;
    run->n = n;
    run->k = w == &workloads[RETRY]     ? 3
             : w == &workloads[FANOUT]  ? 10
             : w == &workloads[LIMITED] ? 1
                                        : k;
    run->expect_v = w == &workloads[FANOUT] ? 1 : run->k;
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
        msg.ts = wall_ms();
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
    run->t_start[i] = now_s();
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
 * when it comes. Returns 0, or -1 (Redis lost, a stall, interrupted). */
static int await_finished(struct bench *b, struct run *run)
{
    int i = run->seen;

    while (!interrupted && !__atomic_load_n(&run->stop, __ATOMIC_ACQUIRE)) {
        json_t *rec = NULL;
        int rc = bt_cli_follow(&b->follow, b->store, run->ids[i], 1000, &b->hist, &rec);
        if (rc == 1) {
            const json_t *res = json_object_get(rec, "result");
            const char *status = json_string_value(json_object_get(rec, "status"));
            const char *wf = json_string_value(json_object_get(res, "wf"));
            run->t_seen[i] = now_s();
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
            return -1;
        }
        if (now_s() - run->t_start[i] > STALL_S) {
            fprintf(stderr,
                    "\nbaton bench: %s: %s did not finish in %.0f s (worker log: %s)\n",
                    run->w->name, run->ids[i], STALL_S,
                    b->stack.dev ? b->stack.log : "?");
            return -1;
        }
    }
    return -1;
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
            run->t_end[i] = now_s();
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
    double now = now_s(), el = now - t0;
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

    while (run->started < run->n && !interrupted &&
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
 * This thread reads and checks the results. Returns 0, or -1 on a stall. */
static int drive(struct bench *b, struct run *run, int inflight)
{
    double t0 = now_s(), last_result = t0;
    bool sequential = run->w->sequential;
    struct caller caller = {.b = b, .run = run};
    pthread_t caller_thread;
    int ret = -1;

    if (sequential && pthread_create(&caller_thread, NULL, call_one_at_a_time, &caller)) {
        fprintf(stderr, "baton bench: cannot start a thread\n");
        return -1;
    }
    while (run->done < run->n) {
        rd_kafka_message_t *rkm;
        int wait_ms;

        if (interrupted || __atomic_load_n(&caller.failed, __ATOMIC_ACQUIRE))
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
                last_result = now_s();
            wait_ms = 0;
        }
        if (now_s() - last_result > STALL_S) {
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

/* ---- step latency, from the instances' history ---- */

struct sched {
    int64_t seq;
    int attempt;
    int64_t ts;
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* Nearest rank, as the peers' harness computes it. sorted[0..n) ascending. */
static double pct(const double *sorted, size_t n, double p)
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
static double *step_latencies(struct bench *b, const struct run *run, size_t *n,
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
        qsort(lat, *n, sizeof(*lat), cmp_double);
    return lat;
}

/* ---- the report ---- */

static double round_to(double v, int decimals)
{
    double f = pow(10, decimals);

    return isfinite(v) ? round(v * f) / f : v;
}

static void put(json_t *o, const char *key, double v, int decimals)
{
    json_object_set_new(o, key,
                        isfinite(v) ? json_real(round_to(v, decimals)) : json_null());
}

static double seconds(unsigned long long ticks)
{
    return (double)ticks / (double)sysconf(_SC_CLK_TCK);
}

static unsigned long long cmd_calls(const struct snapshot *s, const char *name, bool usec)
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
        double cpu = seconds(
            t->ticks - thread_ticks(s0->threads[which], s0->n_threads[which], t->tid));
        json_t *o;
        size_t at = 0;
        if (cpu <= 0)
            continue;
        o = json_pack("{s:s, s:i, s:b}", "comm", t->comm, "tid", (int)t->tid, "main",
                      t->tid == pid);
        put(o, "cpu_s", cpu, 2);
        put(o, "util_pct", 100 * cpu / elapsed, 1);
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
    qsort(t, (size_t)n, sizeof(*t), cmp_double);
    qsort(counts, (size_t)n_pids, sizeof(*counts), cmp_long_desc);
    for (int p = 0; p < n_pids; p++)
        snprintf(by_proc + strlen(by_proc), sizeof(by_proc) - strlen(by_proc), "%s%ld",
                 p ? "/" : "", counts[p]);
    if (burst < 1)
        burst = 1;
    if (n > burst + 1 && t[n - 1] > t[burst - 1])
        observed = (n - burst) / (t[n - 1] - t[burst - 1]);
    put(o, "limit_per_s", rate, 1);
    json_object_set_new(o, "limit_burst", json_integer(burst));
    put(o, "observed_per_s", observed, 2);
    put(o, "first_to_last_start_per_s",
        n > 1 && t[n - 1] > t[0] ? (n - 1) / (t[n - 1] - t[0]) : NAN, 2);
    put(o, "observed_over_limit", observed / rate, 3);
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

static json_t *report(struct bench *b, const struct run *run, const struct snapshot *s0,
                      const struct snapshot *s1)
{
    json_t *o = json_object(), *cmds = json_object(), *usecs = json_object(),
           *topics = json_object(), *cpu;
    double first = run->t_start[0], last = 0, elapsed, run_s = s1->t - s0->t, *wf_lat,
           *res_lat;
    double steps = (double)run->n * run->k, ours = 0, *step_lat;
    unsigned long long calls = 0, evals = 0;
    long long msgs = 0, dlq;
    long failed_attempts;
    size_t n_steps;
    char dlq_topic[300];

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
    qsort(wf_lat, (size_t)run->n, sizeof(*wf_lat), cmp_double);
    qsort(res_lat, (size_t)run->n, sizeof(*res_lat), cmp_double);
    elapsed = last - first;
    step_lat = step_latencies(b, run, &n_steps, &failed_attempts);

    json_object_set_new(o, "workload", json_string(run->w->name));
    json_object_set_new(o, "workflows", json_integer(run->n));
    json_object_set_new(o, "steps", json_integer(run->k));
    if (!run->w->sequential) {
        json_object_set_new(o, "inflight", json_integer(b->opts.inflight));
        json_object_set_new(o, "running", json_integer(b->opts.running));
    }
    put(o, "elapsed_s", elapsed, 3);
    put(o, "wf_per_s", run->n / elapsed, 1);
    put(o, "steps_per_s", steps / elapsed, 1);
    put(o, "wf_p50_ms", pct(wf_lat, (size_t)run->n, 50), 2);
    put(o, "wf_p90_ms", pct(wf_lat, (size_t)run->n, 90), 2);
    put(o, "wf_p99_ms", pct(wf_lat, (size_t)run->n, 99), 2);
    put(o, "wf_max_ms", wf_lat[run->n - 1], 2);
    if (run->w->sequential) { /* the same instances, seen on <prefix>.results */
        put(o, "result_topic_p50_ms", pct(res_lat, (size_t)run->n, 50), 2);
        put(o, "result_topic_p99_ms", pct(res_lat, (size_t)run->n, 99), 2);
    }
    /* history timestamps are whole milliseconds */
    put(o, "step_p50_ms", pct(step_lat, n_steps, 50), 0);
    put(o, "step_p90_ms", pct(step_lat, n_steps, 90), 0);
    put(o, "step_p99_ms", pct(step_lat, n_steps, 99), 0);
    put(o, "step_max_ms", n_steps ? step_lat[n_steps - 1] : NAN, 0);
    if (run->w == &workloads[RETRY]) {
        put(o, "retry_floor_s", 0.2, 1);
        put(o, "over_floor_pct", 100 * (elapsed / 0.2 - 1), 0);
        json_object_set_new(o, "failed_attempts", json_integer(failed_attempts));
    }
    if (run->w == &workloads[LIMITED])
        limited_report(b, run, o);
    for (int r = 0; r < N_ROLES; r++) {
        char key[64];
        double s = seconds(s1->ticks[r] - s0->ticks[r]);
        if (!b->stack.roles[r].n)
            continue;
        snprintf(key, sizeof(key), "cpu_us_per_step_%s", role_names[r]);
        put(o, key, 1e6 * s / steps, 1);
        ours += s;
    }
    for (int r = 0; r < N_ROLES; r++) {
        char key[64];
        if (!b->stack.roles[r].n)
            continue;
        snprintf(key, sizeof(key), "util_pct_%s", role_names[r]);
        put(o, key, 100 * seconds(s1->ticks[r] - s0->ticks[r]) / run_s, 1);
        if (r == R_BROKER) /* its main thread is baton dev's, not the broker's */
            continue;
        snprintf(key, sizeof(key), "cpu_wait_pct_%s", role_names[r]);
        put(o, key, 100 * (double)(s1->wait_ns[r] - s0->wait_ns[r]) / 1e9 / run_s, 1);
    }
    cpu = threads_json(s0, s1, 0, b->stack.roles[R_WORKER].pids[0], run_s);
    if (json_array_size(cpu))
        put(o, "util_pct_worker_busiest_thread",
            json_real_value(json_object_get(json_array_get(cpu, 0), "util_pct")), 1);
    /* CPU that neither the stack nor the driver used, in % of one core: other
     * tenants of the machine make the figures unfair */
    if (s1->total > s0->total) {
        unsigned long long busy = s1->busy - s0->busy, total = s1->total - s0->total;
        put(o, "machine_busy_pct", 100.0 * (double)busy / (double)total, 1);
        put(o, "other_cpu_pct", 100 * (seconds(busy) - ours) / run_s, 1);
    }
    for (int i = 0; i < s1->n_cmds; i++) {
        unsigned long long d = s1->cmds[i].calls - cmd_calls(s0, s1->cmds[i].name, false);
        if (!d)
            continue;
        calls += d;
        put(cmds, s1->cmds[i].name, (double)d / steps, 2);
        /* where Redis's time goes, nested calls of scripts included: a
         * command whose cost grows with the data held shows here */
        put(usecs, s1->cmds[i].name,
            (double)(s1->cmds[i].usec - cmd_calls(s0, s1->cmds[i].name, true)) /
                (double)d,
            2);
        if (!strcmp(s1->cmds[i].name, "evalsha") || !strcmp(s1->cmds[i].name, "eval"))
            evals += d;
    }
    put(o, "redis_calls_per_step", (double)calls / steps, 2);
    put(o, "redis_round_trips_per_step",
        (double)(s1->round_trips - s0->round_trips) / steps, 2);
    put(o, "redis_scripts_per_step", (double)evals / steps, 2);
    put(o, "redis_usec_per_step",
        (double)(cmd_calls(s1, "evalsha", true) - cmd_calls(s0, "evalsha", true)) / steps,
        1);
    for (int i = 0; i < s1->n_topics; i++) {
        long long d = s1->topics[i].messages - topic_messages(s0, s1->topics[i].name);
        if (!d)
            continue;
        msgs += d;
        put(topics, s1->topics[i].name, (double)d / steps, 2);
    }
    put(o, "kafka_msgs_per_step", (double)msgs / steps, 2);
    bt_kafka_topic(b->cfg, "dlq", dlq_topic, sizeof(dlq_topic));
    dlq = topic_messages(s1, dlq_topic) - topic_messages(s0, dlq_topic);
    json_object_set_new(o, "dead_letters", json_integer(dlq));
    json_object_set_new(o, "duplicate_results", json_integer(run->duplicates));
    json_object_set_new(o, "bad_results", json_integer(run->bad));
    json_object_set_new(o, "redis_calls_per_step_by_command", cmds);
    json_object_set_new(o, "redis_usec_per_call_by_command", usecs);
    json_object_set_new(o, "kafka_msgs_per_step_by_topic", topics);
    json_object_set_new(o, "worker_threads", cpu);
    if (b->stack.roles[R_BROKER].n)
        json_object_set_new(
            o, "broker_threads",
            threads_json(s0, s1, 1, b->stack.roles[R_BROKER].pids[0], run_s));
    free(wf_lat);
    free(res_lat);
    free(step_lat);
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
        } else if (json_is_real(v)) {
            d = json_real_value(v);
            printf("%.*f", fabs(d) >= 1000 ? 0 : fabs(d) >= 100 ? 1 : 2, d);
        } else {
            printf("NA");
        }
    }
    printf("\n");
}

static void emit(const struct bench *b, const json_t *o)
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

/* ---- one workload ---- */

/* The stack with nothing to do: CPU and Redis calls per second of polling,
 * over --idle-s (30 s: a 10 ms CPU tick is then 0.03 % of a core). */
static void run_idle(struct bench *b)
{
    struct snapshot *s0 = calloc(1, sizeof(*s0)), *s1 = calloc(1, sizeof(*s1));
    unsigned long long calls = 0;
    json_t *o;
    double el;

    if (!s0 || !s1)
        goto out;
    take_snapshot(b, s0, true);
    bt_clock_sleep_ms(b->opts.idle_s * 1000);
    take_snapshot(b, s1, true);
    el = s1->t - s0->t;
    o = json_pack("{s:s}", "workload", "idle");
    put(o, "elapsed_s", el, 2);
    for (int r = 0; r < N_ROLES; r++) {
        char key[64];
        if (!b->stack.roles[r].n || r == R_DRIVER)
            continue;
        snprintf(key, sizeof(key), "util_pct_%s", role_names[r]);
        put(o, key, 100 * seconds(s1->ticks[r] - s0->ticks[r]) / el, 1);
    }
    for (int i = 0; i < s1->n_cmds; i++)
        calls += s1->cmds[i].calls - cmd_calls(s0, s1->cmds[i].name, false);
    put(o, "redis_calls_per_s", (double)calls / el, 0);
    put(o, "redis_round_trips_per_s", (double)(s1->round_trips - s0->round_trips) / el,
        0);
    emit(b, o);
    json_decref(o);
out:
    free(s0);
    free(s1);
}

static int run_workload(struct bench *b, enum kind kind, const char *tag, int n, int k,
                        bool measure)
{
    const struct workload *w = &workloads[kind];
    struct snapshot *s0 = calloc(1, sizeof(*s0)), *s1 = calloc(1, sizeof(*s1));
    struct run run = {0};
    int ret = -1;

    if (!s0 || !s1 || run_prepare(b, &run, w, tag, n, k)) {
        fprintf(stderr, "baton bench: out of memory\n");
        goto out;
    }
    if (measure)
        take_snapshot(b, s0, true);
    if (drive(b, &run, w->sequential ? 1 : b->opts.inflight))
        goto out;
    if (measure) {
        take_snapshot(b, s1, false);
        /* counters settle: the worker acks its outbox after the results */
        bt_clock_sleep_ms(200);
        read_cmdstats(b, s1);
        read_topics(b, s1);
        json_t *o = report(b, &run, s0, s1);
        emit(b, o);
        json_decref(o);
    }
    if (run.bad) {
        fprintf(stderr, "baton bench: %s: %d wrong results, e.g. %s\n", w->name, run.bad,
                run.first_bad);
        goto out;
    }
    ret = 0;
out:
    run_release(&run);
    free(s0);
    free(s1);
    return ret;
}

/* The limited workload: EXTRA_WORKERS more worker processes join baton dev's
 * (with --attach: the workers that serve the stack), a warm-up creates the
 * bucket and settles the groups, then W one-step workflows compete for its
 * tokens. The extra workers are stopped whatever happens; when more
 * workloads follow, a warm-up waits for the rebalance that leaves. */
static int run_limited(struct bench *b, const char *tag, int n, bool more)
{
    int ret = -1;

    if (!b->opts.attach) {
        if (b->tty)
            fprintf(stderr, "limited: starting %d more baton-workers...\r",
                    EXTRA_WORKERS);
        if (extra_start(&b->stack, b->cfg))
            goto out;
    }
    if (run_workload(b, LIMITED, "warmup-limited", WARMUP, 1, false))
        goto out;
    bt_clock_sleep_ms(300); /* the bucket fills up again (burst 10 at 100/s: 0.1 s) */
    ret = run_workload(b, LIMITED, tag, n, 1, true);
out:
    if (b->stack.n_extra) {
        extra_stop(&b->stack);
        if (more && !interrupted &&
            run_workload(b, CHAIN, "warmup-after-limited", WARMUP, 3, false))
            ret = -1;
    }
    return ret;
}

/* ---- set-up ---- */

static void workloads_help(void *file)
{
    FILE *f = file;

    fprintf(f, "\nWorkloads (default: idle chain latency retry fanout limited):\n");
    for (size_t i = 0; i < N_WORKLOADS; i++)
        fprintf(f, "  %-8s %s\n", workloads[i].name, workloads[i].about);
    fprintf(f,
            "\nThe stack gets --concurrency, --partitions, --queues, --eager, --plugin "
            "and --kafka.*\n(default plugin: <bin>/../plugins/bench.so).\n");
}

static int64_t workflows_arg, steps_arg = 3, inflight_arg = 200, idle_s_arg = 30,
                              running_arg;
static bool json_arg, attach_arg;

static const struct bt_arg bench_args[] = {
    {"workflows", 0, BT_ARG_INT, &workflows_arg, "W",
     "chain 2000, latency 200, retry 200, fanout 500, limited 1000", 1, 10000000,
     .help = "instances per workload"},
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
        for (k = 0; k < N_WORKLOADS && strcmp(pos[i], workloads[k].name); k++)
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
    int ret = -1;

    snprintf(group, sizeof(group), "baton-bench-%d", (int)getpid());
    if (!(b->consumer = bt_kafka_consumer_new(b->cfg, group, NULL, NULL, errstr, n)))
        return -1;
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
             (unsigned)((unsigned)wall_ms() ^ ((unsigned)getpid() << 12)) & 0xffffff);
    bt_kafka_topic(cfg, "events", b.events, sizeof(b.events));
    bt_kafka_topic(cfg, "results", b.results, sizeof(b.results));

    ret = BT_EXIT_UNAVAILABLE;
    if (!b.opts.attach) {
        if (b.tty)
            fprintf(stderr,
                    "starting baton dev (redis-server, embedded Kafka, scheduler, "
                    "worker)...\r");
        if (stack_start(&b.stack, cfg))
            goto out;
    }
    bt_history_init(&b.hist);
    bt_cli_follow_init(&b.follow, cfg);
    if (!(b.store = bt_cli_store(cfg)))
        goto out;
    if (b.opts.attach)
        stack_attach(&b.stack, cfg, bt_store_redis(b.store));
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
    if (run_workload(&b, CHAIN, "warmup", WARMUP, 3, false)) {
        ret = BT_EXIT_FAIL;
        goto out;
    }
    ret = BT_EXIT_OK;
    for (size_t i = 0; i < b.opts.n_run && !interrupted; i++) {
        enum kind kind = b.opts.run[i];
        const struct workload *w = &workloads[kind];
        int n = b.opts.workflows ? b.opts.workflows : w->workflows;
        char tag[32];
        if (kind == IDLE) {
            run_idle(&b);
            continue;
        }
        snprintf(tag, sizeof(tag), "%s%zu", w->name, i);
        if (kind == LIMITED) {
            if (run_limited(&b, tag, n, i + 1 < b.opts.n_run))
                ret = BT_EXIT_FAIL;
            continue;
        }
        if (run_workload(&b, kind, tag, n, b.opts.steps, true))
            ret = BT_EXIT_FAIL;
    }
    if (interrupted) {
        fprintf(stderr, "baton bench: interrupted; stopping the stack\n");
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
    stack_stop(&b.stack);
    return ret;
}
