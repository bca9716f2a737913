/* The stack a run measures: `baton dev` with a temporary home (and the
 * limited workload's extra workers), or --attach's processes. */
#define _GNU_SOURCE /* asprintf */
#include "driver.h"
#include "tree.h"

/* Stops the baton-workers started beside baton dev's (SIGTERM; SIGKILL after
 * 10 s) and drops them from the worker role. */
void bench_extra_stop(struct stack *s)
{
    for (int i = 0; i < s->n_extra; i++)
        if (s->extra[i] > 0)
            kill(s->extra[i], SIGTERM); /* all at once, then each waited for */
    for (int i = 0; i < s->n_extra; i++)
        bt_proc_stop(s->extra[i], 10000, false);
    s->roles[R_WORKER].n -= s->n_extra;
    s->n_extra = 0;
}

void bench_stack_stop(struct stack *s)
{
    bench_extra_stop(s);
    if (s->dev > 0) {
        /* baton dev stops its children (SIGTERM, SIGKILL after 5 s), then exits */
        bt_proc_stop(s->dev, 15000, true);
        s->dev = 0;
    }
    if (s->home[0]) {
        bt_remove_tree(s->home);
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
        return BT_EIO;
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
    return found == 2 ? 0 : BT_ENOENT;
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
    char conc[16], parts[16], shards[16];
    /* 18 fixed arguments at most, the plugins', the NULL (the kafka
     * properties go in the environment: dev_envp) */
    size_t n = 0, cap = 19 + 2 * cfg->n_plugins;
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
        /* the driver reads the stack's keys with the same layout (a worker
         * beside it finds it in dev.env) */
        if (cfg->redis_shards > 0) {
            snprintf(shards, sizeof(shards), "%d", cfg->redis_shards);
            argv[n++] = strdup("--redis-shards");
            argv[n++] = strdup(shards);
        }
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
        return BT_EIO;
    self[len] = '\0';
    snprintf(dir, sizeof(dir), "%s", self);
    if (!(slash = strrchr(dir, '/')))
        return BT_EIO;
    *slash = '\0';
    snprintf(plugin, n_plugin, "%s/../plugins/bench.so", dir);
    return 0;
}

int bench_stack_start(struct stack *s, struct bt_config *cfg)
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

    deadline = bench_now_s() + START_S;
    while (access(env_path, R_OK)) {
        if (waitpid(pid, &status, WNOHANG) == pid || bench_now_s() > deadline ||
            bench_interrupted) {
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
    while ((s->roles[R_WORKER].n = bench_find_procs("baton-worker", pid, NULL,
                                                    s->roles[R_WORKER].pids, 1)) == 0 ||
           (s->roles[R_SCHEDULER].n = bench_find_procs(
                "baton-scheduler", pid, NULL, s->roles[R_SCHEDULER].pids, 1)) == 0 ||
           (s->roles[R_REDIS].n = bench_find_procs("redis-server", pid, NULL,
                                                   s->roles[R_REDIS].pids, 1)) == 0) {
        if (bench_now_s() > deadline || bench_interrupted) {
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
int bench_extra_start(struct stack *s, const struct bt_config *cfg)
{
    char self[PATH_MAX], plugin[PATH_MAX + 32], exe[PATH_MAX + 32];
    char home_var[PATH_MAX + 16], log[PATH_MAX + 32], *slash;
    char **argv = NULL, **envp = NULL;
    pid_t pid;
    double deadline;
    int ret = BT_EIO, status;

    if (!s->dev || find_plugin(self, sizeof(self), plugin, sizeof(plugin)))
        return BT_EIO;
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
    deadline = bench_now_s() + 2 * START_S;
    for (int i = 0; i < s->n_extra; i++) {
        extra_log(s, i, log, sizeof(log));
        while (!owns_partitions(log)) {
            bool exited = waitpid(s->extra[i], &status, WNOHANG) == s->extra[i];
            if (exited || bench_now_s() > deadline || bench_interrupted) {
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
void bench_stack_attach(struct stack *s, const struct bt_config *cfg, struct bt_redis *r)
{
    redisReply *reply = bt_redis_command(r, "INFO server");
    const char *p;

    s->roles[R_WORKER].n = bench_find_procs("baton-worker", 0, cfg->brokers,
                                            s->roles[R_WORKER].pids, MAX_PIDS);
    s->roles[R_SCHEDULER].n = bench_find_procs("baton-scheduler", 0, cfg->brokers,
                                               s->roles[R_SCHEDULER].pids, MAX_PIDS);
    if (reply && reply->type == REDIS_REPLY_STRING &&
        (p = strstr(reply->str, "process_id:"))) {
        char path[64], comm[64];
        pid_t pid = (pid_t)atoi(p + 11);
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        if (bench_read_stat(path, comm, sizeof(comm), NULL, NULL) == 0 &&
            !strcmp(comm, "redis-server")) {
            s->roles[R_REDIS].pids[0] = pid;
            s->roles[R_REDIS].n = 1;
        }
    }
    freeReplyObject(reply);
}
