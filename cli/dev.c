/* `baton dev`: the whole stack on one machine, in one foreground command. It
 * runs a redis-server (data dir and append-only file under $BATON_HOME), an
 * in-process Kafka cluster (librdkafka's mock cluster, served by librdkafka's
 * own threads while this one waits for signals), writes the addresses to
 * $BATON_HOME/dev.env for the other `baton` commands, and runs baton-scheduler
 * and baton-worker against them, restarting a child that crashes. Ctrl-C stops
 * everything; children die with this process even on kill -9 (PDEATHSIG). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <hiredis/hiredis.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "clock.h"
#include "proc.h"
#include "cli.h"
#include "err.h"
#include "kafka.h"
#include "log.h"

#define MAX_RESTARTS     5     /* in a row, then the child stays down */
#define BACKOFF_FIRST_MS 500   /* doubles with each restart in a row */
#define HEALTHY_AFTER_MS 30000 /* a child that ran this long starts a new row */
#define STOP_TIMEOUT_MS  5000  /* SIGTERM, then SIGKILL */
#define REDIS_TIMEOUT_MS 10000 /* until redis-server answers PING */
#define REDIS_NODES      3     /* the masters of --redis-cluster's cluster */
#define PROC_REDIS       0     /* up to PROC_REDIS + REDIS_NODES - 1 */
#define PROC_SCHEDULER   REDIS_NODES
#define PROC_WORKER      (REDIS_NODES + 1)
#define N_PROCS          (REDIS_NODES + 2)

/* A program baton dev runs, watches and restarts. */
struct child {
    const char *name;
    char **argv; /* argv[0] is an absolute path; NULL: not run */
    int argc;
    int deathsig; /* what the kernel sends it when baton dev dies */
    pid_t pid;    /* 0: not running */
    int restarts; /* in a row */
    int64_t started_ms;
    int64_t restart_at_ms; /* 0: no restart pending */
};

struct dev {
    struct bt_config *cfg; /* borrowed */
    char env_path[PATH_MAX];
    int wrote_env;
    int lock_fd;                      /* holds the home's lock; -1: none */
    char **envp;                      /* the children's environment */
    int n_redis;                      /* redis-servers: 1, or a cluster's */
    int redis_ports[REDIS_NODES];     /* [0]: the one redis-server */
    int bus_ports[REDIS_NODES];       /* a cluster node's cluster bus */
    char redis[REDIS_NODES * 24 + 8]; /* their addresses, for the programs */
    rd_kafka_t *rk;                   /* owns the mock cluster */
    rd_kafka_mock_cluster_t *mcluster;
    char brokers[256];
    char topics[2048]; /* created, space-separated, for the user */
    struct child procs[N_PROCS];
};

extern char **environ;

static int mkdir_p(const char *path)
{
    char buf[PATH_MAX];

    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return BT_EINVAL;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) && errno != EEXIST)
            return BT_EIO;
        *p = '/';
    }
    return mkdir(buf, 0700) && errno != EEXIST ? BT_EIO : 0;
}

int bt_cli_find_in_path(const char *name, char *buf, size_t n)
{
    const char *path = getenv("PATH");
    char *copy, *save = NULL;
    int ret = BT_ENOENT;

    if (!(copy = strdup(path ? path : "/usr/local/bin:/usr/bin:/bin")))
        return BT_ENOMEM;
    for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        if (snprintf(buf, n, "%s/%s", dir, name) < (int)n && access(buf, X_OK) == 0) {
            ret = 0;
            break;
        }
    }
    free(copy);
    return ret;
}

/* A port nobody listens on now (the kernel's pick for 127.0.0.1:0). */
static int free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t len = sizeof(sa);
    int fd, port = BT_EIO;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
        return BT_EIO;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

static int argv_push(struct child *c, const char *arg)
{
    char **grown = realloc(c->argv, (size_t)(c->argc + 2) * sizeof(*grown));

    if (!grown)
        return BT_ENOMEM;
    c->argv = grown;
    if (!(grown[c->argc] = strdup(arg)))
        return BT_ENOMEM;
    grown[++c->argc] = NULL;
    return 0;
}

/* argv of baton-scheduler or baton-worker, next to the baton binary. */
static int baton_child(struct dev *dev, struct child *c, const char *name,
                       int metrics_port)
{
    const struct bt_config *cfg = dev->cfg;
    char path[PATH_MAX], port[16];
    ssize_t len = readlink("/proc/self/exe", path, sizeof(path) - 1);
    char *slash;

    c->name = name;
    c->deathsig = SIGKILL;
    if (len <= 0)
        return BT_EIO;
    path[len] = '\0';
    if (!(slash = strrchr(path, '/')) ||
        snprintf(slash + 1, sizeof(path) - (size_t)(slash + 1 - path), "%s", name) >=
            (int)(sizeof(path) - (size_t)(slash + 1 - path)))
        return BT_EINVAL;
    if (access(path, X_OK)) {
        bt_log(BT_LOG_WARN, "cannot run %s: %s path=%s", name, strerror(errno), path);
        return 0;
    }
    if (argv_push(c, path))
        return BT_ENOMEM;
    for (size_t i = 0; i < cfg->n_plugins; i++)
        if (argv_push(c, "--plugin") || argv_push(c, cfg->plugins[i]))
            return BT_ENOMEM;
    if (metrics_port) {
        snprintf(port, sizeof(port), "%d", metrics_port);
        if (argv_push(c, "--metrics-port") || argv_push(c, port))
            return BT_ENOMEM;
    }
    return 0;
}

/* redis-server i: the one (data in <home>/redis), or a node of the cluster
 * (<home>/redis-cluster/<i>, made afresh by bt_cli_dev_cluster). */
static int redis_child(struct dev *dev, int i)
{
    const struct bt_config *cfg = dev->cfg;
    struct child *c = &dev->procs[PROC_REDIS + i];
    char path[PATH_MAX], dir[PATH_MAX], log[PATH_MAX], port[16], bus[16], conf[PATH_MAX];
    int ret;

    c->name = "redis-server";
    c->deathsig = SIGTERM; /* lets it flush the append-only file */
    if (bt_cli_find_in_path("redis-server", path, sizeof(path))) {
        bt_log(BT_LOG_ERROR, "redis-server not found in PATH (run scripts/bootstrap)");
        return BT_ENOENT;
    }
    if (cfg->redis_cluster) {
        snprintf(dir, sizeof(dir), "%s/redis-cluster/%d", cfg->home, i);
        snprintf(log, sizeof(log), "%s/redis-cluster/%d.log", cfg->home, i);
    } else {
        snprintf(dir, sizeof(dir), "%s/redis", cfg->home);
        snprintf(log, sizeof(log), "%s/redis.log", cfg->home);
    }
    snprintf(port, sizeof(port), "%d", dev->redis_ports[i]);
    snprintf(bus, sizeof(bus), "%d", dev->bus_ports[i]);
    if (mkdir_p(dir)) {
        bt_log(BT_LOG_ERROR, "cannot create a directory: %s dir=%s", strerror(errno),
               dir);
        return BT_EIO;
    }
    if ((ret = bt_cli_dev_redis_conf(cfg, conf, sizeof(conf))))
        return ret;
    if (argv_push(c, path) || (*conf && argv_push(c, conf)) || argv_push(c, "--port") ||
        argv_push(c, port) || argv_push(c, "--bind") || argv_push(c, "127.0.0.1") ||
        argv_push(c, "--dir") || argv_push(c, dir) || argv_push(c, "--appendonly") ||
        argv_push(c, "yes") || argv_push(c, "--save") || argv_push(c, "") ||
        argv_push(c, "--daemonize") || argv_push(c, "no") || argv_push(c, "--logfile") ||
        argv_push(c, log))
        return BT_ENOMEM;
    /* a cluster node; its bus on a port of its own (port + 10000 may be past
     * 65535) */
    if (cfg->redis_cluster &&
        (argv_push(c, "--cluster-enabled") || argv_push(c, "yes") ||
         argv_push(c, "--cluster-config-file") || argv_push(c, "nodes.conf") ||
         argv_push(c, "--cluster-port") || argv_push(c, bus)))
        return BT_ENOMEM;
    return 0;
}

/* The child joins its own process group, so a Ctrl-C at the terminal reaches
 * baton dev alone, which then stops the children in order. */
static int child_start(struct child *c, char **envp)
{
    const struct bt_spawn how = {
        .stdin_null = true, .own_group = true, .deathsig = c->deathsig};
    pid_t pid = bt_proc_spawn(c->argv, envp, &how);

    if (pid < 0) {
        bt_log(BT_LOG_ERROR, "cannot start: %s name=%s", strerror(errno), c->name);
        return BT_EIO;
    }
    c->pid = pid;
    c->started_ms = bt_clock_mono_ms();
    c->restart_at_ms = 0;
    bt_log(BT_LOG_INFO, "started name=%s child_pid=%d", c->name, (int)pid);
    return 0;
}

/* Bounded wait until redis-server i answers PING (and fails fast if it
 * died). */
static int redis_wait(struct dev *dev, int i)
{
    struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};
    int64_t deadline = bt_clock_mono_ms() + REDIS_TIMEOUT_MS;
    struct child *c = &dev->procs[PROC_REDIS + i];
    int status;

    while (bt_clock_mono_ms() < deadline) {
        redisContext *rc = redisConnectWithTimeout("127.0.0.1", dev->redis_ports[i], tv);
        redisReply *reply = NULL;
        int ok = 0;

        if (rc && !rc->err && dev->cfg->redis_password)
            freeReplyObject(dev->cfg->redis_user
                                ? redisCommand(rc, "AUTH %s %s", dev->cfg->redis_user,
                                               dev->cfg->redis_password)
                                : redisCommand(rc, "AUTH %s", dev->cfg->redis_password));
        if (rc && !rc->err && (reply = redisCommand(rc, "PING")))
            ok = reply->type == REDIS_REPLY_STATUS && !strcmp(reply->str, "PONG");
        freeReplyObject(reply);
        redisFree(rc);
        if (ok)
            return 0;
        if (waitpid(c->pid, &status, WNOHANG) == c->pid) {
            c->pid = 0;
            break;
        }
        bt_clock_sleep_ms(50);
    }
    bt_log(BT_LOG_ERROR, "redis-server did not answer port=%d home=%s",
           dev->redis_ports[i], dev->cfg->home);
    return BT_ETIMEDOUT;
}

/* Queue names become topic names: Kafka's characters, and short. */
static int topic_create(struct dev *dev, const char *suffix)
{
    char topic[512];
    rd_kafka_resp_err_t err;

    snprintf(topic, sizeof(topic), "%s.%s", dev->cfg->prefix, suffix);
    err = rd_kafka_mock_topic_create(dev->mcluster, topic, dev->cfg->partitions, 1);
    if (err) {
        bt_log(BT_LOG_ERROR, "cannot create a topic: %s topic=%s", rd_kafka_err2str(err),
               topic);
        return BT_EIO;
    }
    snprintf(dev->topics + strlen(dev->topics), sizeof(dev->topics) - strlen(dev->topics),
             "%s%s", *dev->topics ? " " : "", topic);
    return 0;
}

/* events, results, dlq, tasks.legacy, archive, and tasks.<q> and events.<q> for each
 * of cfg->queues (the default queue's events are on "events"). */
static int kafka_start(struct dev *dev)
{
    static const char *const fixed[] = {"events", "results", "dlq", "tasks.legacy",
                                        "archive"};
    char errstr[512], *queues = NULL, *save = NULL;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *bootstraps;
    int ret = BT_EIO;

    /* this handle only hosts the cluster: its "no bootstrap.servers" notice is noise */
    rd_kafka_conf_set(conf, "log_level", "4", NULL, 0);
    bt_kafka_conf_log(conf);
    if (!(dev->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr)))) {
        rd_kafka_conf_destroy(conf);
        bt_log(BT_LOG_ERROR, "cannot create a Kafka handle: %s", errstr);
        return BT_EIO;
    }
    if (!(dev->mcluster = rd_kafka_mock_cluster_new(dev->rk, 1)) ||
        !(bootstraps = rd_kafka_mock_cluster_bootstraps(dev->mcluster))) {
        bt_log(BT_LOG_ERROR, "cannot start the embedded Kafka cluster");
        return BT_EIO;
    }
    snprintf(dev->brokers, sizeof(dev->brokers), "%s", bootstraps);
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (topic_create(dev, fixed[i]))
            return BT_EIO;
    if (!(queues = strdup(dev->cfg->queues)))
        return BT_ENOMEM;
    for (char *q = strtok_r(queues, ", ", &save); q; q = strtok_r(NULL, ", ", &save)) {
        char suffix[300];
        if (!strcmp(q, "legacy"))
            continue;
        snprintf(suffix, sizeof(suffix), "tasks.%s", q);
        if (topic_create(dev, suffix))
            goto out;
        snprintf(suffix, sizeof(suffix), "events.%s", q);
        if (strcmp(q, "default") && topic_create(dev, suffix))
            goto out;
    }
    ret = 0;
out:
    free(queues);
    return ret;
}

/* One baton dev per home: a record lock on $BATON_HOME/dev.lock, held while
 * this process lives (the kernel drops it even on kill -9). Returns 0, or
 * the pid of the baton dev holding it, or BT_EIO (errno says why). */
static pid_t lock_home(struct dev *dev)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/dev.lock", dev->cfg->home);
    if ((dev->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
        return BT_EIO;
    if (fcntl(dev->lock_fd, F_SETLK, &fl) == 0)
        return 0;
    if ((errno == EAGAIN || errno == EACCES) && fcntl(dev->lock_fd, F_GETLK, &fl) == 0 &&
        fl.l_type != F_UNLCK)
        return fl.l_pid;
    return BT_EIO;
}

static void describe(int status, char *buf, size_t n)
{
    if (WIFSIGNALED(status))
        snprintf(buf, n, "signal=%d", WTERMSIG(status));
    else
        snprintf(buf, n, "exit=%d", WEXITSTATUS(status));
}

/* A child exited on its own: exit 0 means it is done (it stays down); a crash
 * or a non-zero exit schedules a restart with backoff, at most MAX_RESTARTS
 * in a row. */
static void child_exited(struct child *c, int status)
{
    int64_t now = bt_clock_mono_ms();
    char how[32];
    int delay;

    describe(status, how, sizeof(how));
    c->pid = 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        bt_log(BT_LOG_INFO, "child stopped, not restarted: %s name=%s", how, c->name);
        return;
    }
    if (now - c->started_ms >= HEALTHY_AFTER_MS)
        c->restarts = 0;
    if (c->restarts >= MAX_RESTARTS) {
        bt_log(BT_LOG_ERROR, "child failed %d times in a row, giving up: %s name=%s",
               c->restarts, how, c->name);
        return;
    }
    delay = BACKOFF_FIRST_MS << c->restarts++;
    c->restart_at_ms = now + delay;
    bt_log(BT_LOG_WARN, "child exited unexpectedly, restarting in %d ms: %s name=%s",
           delay, how, c->name);
}

static void reap(struct dev *dev)
{
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        for (int i = 0; i < N_PROCS; i++)
            if (dev->procs[i].pid == pid)
                child_exited(&dev->procs[i], status);
}

/* SIGTERM to every running child in procs[from..to), then SIGKILL to those
 * still running after STOP_TIMEOUT_MS. Signals go to each child's process
 * group, so whatever a child started goes with it. */
static void stop_children(struct dev *dev, int from, int to)
{
    int64_t deadline = bt_clock_mono_ms() + STOP_TIMEOUT_MS;
    int running;

    for (int i = from; i < to; i++)
        if (dev->procs[i].pid > 0)
            kill(-dev->procs[i].pid, SIGTERM);
    do {
        running = 0;
        for (int i = from; i < to; i++) {
            struct child *c = &dev->procs[i];
            int status;
            if (c->pid <= 0)
                continue;
            if (waitpid(c->pid, &status, WNOHANG) == c->pid)
                c->pid = 0;
            else if (bt_clock_mono_ms() >= deadline) {
                bt_log(BT_LOG_WARN,
                       "child ignored SIGTERM, killing it name=%s child_pid=%d", c->name,
                       (int)c->pid);
                kill(-c->pid, SIGKILL);
                waitpid(c->pid, &status, 0);
                c->pid = 0;
            } else {
                running = 1;
            }
        }
        if (running)
            bt_clock_sleep_ms(10);
    } while (running);
}

/* Waits for signals; restarts children whose backoff has passed. Returns the
 * signal that asked to stop. */
static int run(struct dev *dev, const sigset_t *signals)
{
    for (;;) {
        int64_t now = bt_clock_mono_ms(), wait_ms = 1000;
        struct timespec ts;
        int sig;

        for (int i = 0; i < N_PROCS; i++) {
            struct child *c = &dev->procs[i];
            if (!c->restart_at_ms)
                continue;
            if (c->restart_at_ms <= now)
                child_start(c, dev->envp);
            else if (c->restart_at_ms - now < wait_ms)
                wait_ms = c->restart_at_ms - now;
        }
        ts.tv_sec = (time_t)(wait_ms / 1000);
        ts.tv_nsec = (long)(wait_ms % 1000) * 1000000;
        sig = sigtimedwait(signals, NULL, &ts);
        if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP)
            return sig;
        reap(dev);
    }
}

static void dev_release(struct dev *dev)
{
    char conf[PATH_MAX];

    if (dev->wrote_env)
        unlink(dev->env_path);
    stop_children(dev, PROC_SCHEDULER, N_PROCS);
    stop_children(dev, PROC_REDIS, PROC_REDIS + REDIS_NODES);
    /* the credentials rest on disk only while it runs, as dev.env's do (and
     * only ours: without the home's lock, redis was never started) */
    if (dev->procs[PROC_REDIS].argv && snprintf(conf, sizeof(conf), "%s/redis-auth.conf",
                                                dev->cfg->home) < (int)sizeof(conf))
        unlink(conf);
    if (dev->mcluster)
        rd_kafka_mock_cluster_destroy(dev->mcluster);
    if (dev->rk)
        rd_kafka_destroy(dev->rk);
    for (int i = 0; i < N_PROCS; i++) {
        for (int j = 0; j < dev->procs[i].argc; j++)
            free(dev->procs[i].argv[j]);
        free(dev->procs[i].argv);
    }
    for (char **e = dev->envp; e && *e; e++)
        free(*e);
    free(dev->envp);
    if (dev->lock_fd >= 0)
        close(dev->lock_fd);
}

/* Blocked before librdkafka starts its threads, so they inherit the mask and
 * every signal is taken by sigtimedwait() in run(); a shell starts background
 * jobs with SIGINT ignored, and `kill -INT` must still stop us. */
static void take_signals(sigset_t *signals)
{
    sigemptyset(signals);
    sigaddset(signals, SIGINT);
    sigaddset(signals, SIGTERM);
    sigaddset(signals, SIGHUP);
    sigaddset(signals, SIGCHLD);
    sigprocmask(SIG_BLOCK, signals, NULL);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGPIPE, SIG_IGN);
}

/* baton-scheduler and baton-worker, as asked, with the environment of the
 * settings baton dev resolved (one that cannot be spawned is logged and left
 * out). 0, or BT_ENOMEM (logged). */
static int start_programs(struct dev *dev, bool scheduler, bool worker)
{
    const struct bt_config *cfg = dev->cfg;

    if (bt_cli_dev_envp(cfg, dev->brokers, dev->redis, &dev->envp) ||
        (scheduler && baton_child(dev, &dev->procs[PROC_SCHEDULER], "baton-scheduler",
                                  cfg->metrics_port)) ||
        (worker && baton_child(dev, &dev->procs[PROC_WORKER], "baton-worker",
                               cfg->metrics_port ? cfg->metrics_port + 1 : 0))) {
        bt_log(BT_LOG_ERROR, "cannot start: out of memory");
        return BT_ENOMEM;
    }
    for (int i = PROC_SCHEDULER; i < N_PROCS; i++)
        if (dev->procs[i].argv)
            child_start(&dev->procs[i], dev->envp);
    return 0;
}

/* What runs where: for a person on stdout, or, with --log-json, one log line
 * (every line is JSON then, on stdout and stderr alike). */
static void banner(const struct dev *dev)
{
    const struct bt_config *cfg = dev->cfg;

    if (cfg->log_json) {
        bt_log(BT_LOG_INFO,
               "running until Ctrl-C kafka=%s topics=\"%s\" partitions=%d "
               "redis=%s cluster=%d data=%s env=%s",
               dev->brokers, dev->topics, cfg->partitions, dev->redis, cfg->redis_cluster,
               cfg->home, dev->env_path);
        return;
    }
    printf("baton dev: running until Ctrl-C\n");
    printf("  kafka  %s   (embedded; try: kcat -b %s -L)\n", dev->brokers, dev->brokers);
    printf("  topics %s (%d partitions each)\n", dev->topics, cfg->partitions);
    if (cfg->redis_cluster)
        printf("  redis  %s   (a Redis Cluster of %d masters, %d shards, made afresh; "
               "try: redis-cli -c -p %d)\n",
               dev->redis, dev->n_redis, cfg->redis_shards, dev->redis_ports[0]);
    else
        printf("  redis  %s   (data in %s/redis; try: redis-cli -p %d)\n", dev->redis,
               cfg->home, dev->redis_ports[0]);
    printf("  addresses written to %s: other baton commands use them\n", dev->env_path);
    fflush(stdout);
}

/* The redis-server, or the nodes of a cluster made afresh: ports picked,
 * started, answering, and dev->redis their address(es). 0 or an error,
 * logged. */
static int redis_start(struct dev *dev)
{
    const struct bt_config *cfg = dev->cfg;
    size_t len = 0;
    int ret;

    dev->n_redis = cfg->redis_cluster ? REDIS_NODES : 1;
    if (cfg->redis_cluster && (ret = bt_cli_dev_cluster_reset(cfg)))
        return ret;
    for (int i = 0; i < dev->n_redis; i++) {
        dev->redis_ports[i] = cfg->dev_redis_port ? cfg->dev_redis_port + i : free_port();
        do
            dev->bus_ports[i] = cfg->redis_cluster ? free_port() : 0;
        while (dev->bus_ports[i] == dev->redis_ports[i]);
        if (dev->redis_ports[i] <= 0 || dev->bus_ports[i] < 0) {
            bt_log(BT_LOG_ERROR, "cannot find a free port: %s", strerror(errno));
            return BT_EIO;
        }
        len += (size_t)snprintf(dev->redis + len, sizeof(dev->redis) - len,
                                "%s127.0.0.1:%d", i ? "," : "", dev->redis_ports[i]);
        if ((ret = redis_child(dev, i)) ||
            (ret = child_start(&dev->procs[PROC_REDIS + i], environ)) ||
            (ret = redis_wait(dev, i)))
            return ret;
    }
    return cfg->redis_cluster ? bt_cli_dev_cluster_create(cfg, dev->redis) : 0;
}

static bool no_worker_arg, no_scheduler_arg;

static const struct bt_arg dev_args[] = {
    {"no-worker", 0, BT_ARG_BOOL, &no_worker_arg,
     .help = "do not run baton-worker (run your own)"},
    {"no-scheduler", 0, BT_ARG_BOOL, &no_scheduler_arg,
     .help = "do not run baton-scheduler"},
    {NULL},
};

static const struct bt_cmd dev_cmd = {
    .name = "baton dev",
    .synopsis = "[--no-worker] [--no-scheduler] [settings]",
    .about = "Run redis-server, an embedded Kafka cluster, baton-scheduler and "
             "baton-worker in the\nforeground until Ctrl-C (baton-worker only when a "
             "--plugin is given: it refuses to run\nwith nothing registered). State "
             "lives in $BATON_HOME; the addresses are written to\n$BATON_HOME/dev.env, "
             "where the other baton commands find them. --plugin, --queues,\n"
             "--concurrency, --kafka.* and the log settings are passed on to the worker; "
             "with\n--metrics-port N the scheduler serves metrics on N and the worker on "
             "N+1.",
    .args = dev_args,
    .settings =
        (const char *const[]){"home", "dev-redis-port", "redis-cluster", "redis-shards",
                              "partitions", "plugin", "queues", "concurrency", "eager",
                              "metrics-port", "redis-user", "redis-password",
                              "redis-password-file", "prefix", "key-prefix", "log-level",
                              "log-json", "kafka.<property>=<value>", NULL},
};

int bt_cli_dev(struct bt_config *cfg, int argc, char **argv)
{
    struct dev dev = {.cfg = cfg, .lock_fd = -1};
    int no_worker, no_scheduler, ret, sig, n_pos;
    sigset_t signals;
    pid_t other;

    if ((ret = bt_cli_args(&dev_cmd, argc, argv, NULL, &n_pos)) >= 0)
        return ret;
    no_worker = no_worker_arg;
    no_scheduler = no_scheduler_arg;
    ret = BT_EXIT_FAIL;
    /* baton-worker refuses to run with nothing registered; restarting it
     * five times would only repeat that */
    if (!no_worker && !cfg->n_plugins) {
        bt_log(BT_LOG_WARN,
               "no --plugin given: not running baton-worker, which would "
               "have nothing to run (give --plugin lib.so, or run your own)");
        no_worker = 1;
    }

    take_signals(&signals);
    if (mkdir_p(cfg->home)) {
        bt_log(BT_LOG_ERROR, "cannot create a directory: %s dir=%s", strerror(errno),
               cfg->home);
        goto out;
    }
    bt_config_dev_file(cfg, dev.env_path, sizeof(dev.env_path));
    if ((other = lock_home(&dev))) {
        if (other > 0)
            bt_log(BT_LOG_ERROR,
                   "already running with this home; stop it, or give this one another "
                   "BATON_HOME other_pid=%d home=%s",
                   (int)other, cfg->home);
        else
            bt_log(BT_LOG_ERROR, "cannot lock: %s file=%s/dev.lock", strerror(errno),
                   cfg->home);
        goto out;
    }

    if (redis_start(&dev) || kafka_start(&dev) ||
        bt_cli_dev_write_env(cfg, dev.env_path, dev.brokers, dev.redis))
        goto out;
    dev.wrote_env = 1;
    banner(&dev);

    if (start_programs(&dev, !no_scheduler, !no_worker))
        goto out;

    sig = run(&dev, &signals);
    bt_log(BT_LOG_INFO, "stopping signal=%d", sig);
    ret = BT_EXIT_OK;
out:
    dev_release(&dev);
    return ret;
}
