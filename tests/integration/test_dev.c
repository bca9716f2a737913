/* `baton dev` as a user meets it: the real binary, its Kafka and Redis seen
 * from outside with kcat and redis-cli, and a clean stop on Ctrl-C. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <hiredis/hiredis.h>

#include "config.h"
#include "harness.h"

static bool exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* The value of `name` in an env file ("" when absent). */
static void env_value(const char *path, const char *name, char *buf, size_t n)
{
    char line[512];
    size_t len = strlen(name);
    FILE *f = fopen(path, "r");

    buf[0] = '\0';
    cr_assert(f, "cannot open %s", path);
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, name, len) && line[len] == '=') {
            line[strcspn(line, "\n")] = '\0';
            snprintf(buf, n, "%s", line + len + 1);
        }
    fclose(f);
}

/* What a shell command prints (stdout and stderr), truncated to n - 1 bytes. */
static void output_of(const char *cmd, char *buf, size_t n)
{
    FILE *p = popen(cmd, "r");
    size_t got = 0, r;

    cr_assert(p, "cannot run %s", cmd);
    while (got < n - 1 && (r = fread(buf + got, 1, n - 1 - got, p)) > 0)
        got += r;
    buf[got] = '\0';
    pclose(p);
}

/* The pid redis-server on this port reports, or -1 when nothing answers. */
static long redis_pid(int port)
{
    struct timeval tv = {.tv_sec = 1};
    redisContext *rc = redisConnectWithTimeout("127.0.0.1", port, tv);
    redisReply *reply = NULL;
    const char *field;
    long pid = -1;

    if (rc && !rc->err && (reply = redisCommand(rc, "INFO server")) &&
        reply->type == REDIS_REPLY_STRING && (field = strstr(reply->str, "process_id:")))
        pid = strtol(field + strlen("process_id:"), NULL, 10);
    freeReplyObject(reply);
    redisFree(rc);
    return pid;
}

Test(dev, serves_kafka_and_redis_and_stops_cleanly_on_ctrl_c, .timeout = 60)
{
    static const char *const suffixes[] = {"events",        "results",      "dlq",
                                           "tasks.default", "tasks.legacy", "archive"};
    char home[] = "/tmp/baton-test-dev-XXXXXX", home_env[64], prefix_env[64];
    char env_path[128], log_path[128], brokers[256], redis[64], cmd[512], out[16384];
    const char *prefix = bt_test_prefix();
    bool ok;
    long rpid;
    pid_t pid;
    int port;

    cr_assert(mkdtemp(home));
    snprintf(home_env, sizeof(home_env), "BATON_HOME=%s", home);
    snprintf(prefix_env, sizeof(prefix_env), "BATON_PREFIX=%s", prefix);
    snprintf(env_path, sizeof(env_path), "%s/dev.env", home);
    snprintf(log_path, sizeof(log_path), "%s/dev.log", home);
    const char *const argv[] = {BT_BIN_DIR "/baton", "dev", "--no-worker",
                                "--no-scheduler", NULL};
    const char *const env[] = {home_env, prefix_env, NULL};

    pid = bt_test_spawn(argv, env, log_path);
    cr_assert(pid > 0);
    BT_TEST_WAIT_UNTIL(ok, exists(env_path), 20000);
    cr_assert(ok, "no %s after 20 s; see %s", env_path, log_path);
    env_value(env_path, "BATON_BROKERS", brokers, sizeof(brokers));
    env_value(env_path, "BATON_REDIS", redis, sizeof(redis));
    cr_assert(strchr(redis, ':'), "BATON_REDIS=\"%s\"", redis);
    port = atoi(strchr(redis, ':') + 1);

    snprintf(cmd, sizeof(cmd), "kcat -b '%s' -L -m 10 2>&1", brokers);
    output_of(cmd, out, sizeof(out));
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        char topic[128];
        snprintf(topic, sizeof(topic), "topic \"%s.%s\" with 4 partitions", prefix,
                 suffixes[i]);
        cr_expect(strstr(out, topic), "kcat -L does not list %s:\n%s", topic, out);
    }

    snprintf(cmd, sizeof(cmd), "redis-cli -p %d PING 2>&1", port);
    output_of(cmd, out, sizeof(out));
    cr_assert_str_eq(out, "PONG\n");
    rpid = redis_pid(port);
    cr_assert(rpid > 0);

    cr_assert_eq(kill(pid, SIGINT), 0);
    cr_assert_eq(bt_test_wait(pid, 10000), 0, "baton dev did not exit 0 within 10 s");
    cr_expect(!exists(env_path), "dev.env is left behind");
    cr_expect(kill((pid_t)rpid, 0) == -1 && errno == ESRCH, "redis-server %ld survived",
              rpid);
    cr_expect_eq(redis_pid(port), -1, "port %d still answers", port);

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", home);
    cr_expect_eq(system(cmd), 0);
}

/* /proc/<pid>/<what> (NUL-separated) into buf with the NULs as spaces. */
static size_t proc_text(long pid, const char *what, char *buf, size_t n)
{
    char path[64];
    size_t len = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/%s", pid, what);
    if ((f = fopen(path, "r"))) {
        len = fread(buf, 1, n - 1, f);
        fclose(f);
    }
    for (size_t i = 0; i < len; i++)
        buf[i] = buf[i] ? buf[i] : ' ';
    buf[len] = '\0';
    return len;
}

/* The pid of a child of pid whose command line holds name, or 0; the list
 * of children goes to children. */
static long child_named(long pid, const char *name, char *children, size_t n)
{
    char what[64], cmdline[4096];
    long found = 0;

    snprintf(what, sizeof(what), "task/%ld/children", pid);
    proc_text(pid, what, children, n);
    for (char *p = children; *p;) {
        char *end;
        long child = strtol(p, &end, 10);
        if (end == p)
            break;
        proc_text(child, "cmdline", cmdline, sizeof(cmdline));
        if (strstr(cmdline, name))
            found = child;
        p = end;
    }
    return found;
}

Test(dev, kafka_properties_reach_the_worker_in_its_environment_not_its_command_line,
     .timeout = 60)
{
    char home[] = "/tmp/baton-test-dev-XXXXXX", home_env[64], prefix_env[64];
    char env_path[128], log_path[128], children[256], cmdline[4096], environ_[16384];
    bool ok;
    long worker = 0;
    pid_t pid;

    cr_assert(mkdtemp(home));
    snprintf(home_env, sizeof(home_env), "BATON_HOME=%s", home);
    snprintf(prefix_env, sizeof(prefix_env), "BATON_PREFIX=%s", bt_test_prefix());
    snprintf(env_path, sizeof(env_path), "%s/dev.env", home);
    snprintf(log_path, sizeof(log_path), "%s/dev.log", home);
    const char *const argv[] = {BT_BIN_DIR "/baton",
                                "dev",
                                "--no-scheduler",
                                "--plugin",
                                BT_PLUGIN_DIR "/flows.so",
                                "--kafka.client.id=secret-7d1f",
                                NULL};
    const char *const env[] = {home_env, prefix_env, NULL};

    pid = bt_test_spawn(argv, env, log_path);
    cr_assert(pid > 0);
    BT_TEST_WAIT_UNTIL(ok, exists(env_path), 20000);
    cr_assert(ok, "no %s after 20 s; see %s", env_path, log_path);
    /* the worker is one of baton dev's children (redis-server is another),
     * started once the cluster and redis answer */
    BT_TEST_WAIT_UNTIL(
        ok, (worker = child_named(pid, "baton-worker", children, sizeof(children))) > 0,
        20000);
    cr_assert(worker > 0, "no baton-worker among %s", children);
    proc_text(worker, "cmdline", cmdline, sizeof(cmdline));
    proc_text(worker, "environ", environ_, sizeof(environ_));
    cr_expect_null(strstr(cmdline, "secret-7d1f"), "on the command line: %s", cmdline);
    cr_expect(strstr(environ_, "BATON_KAFKA_CLIENT_ID=secret-7d1f"),
              "not in the worker's environment");
    /* the embedded cluster's fetch wait, for its children and for workers
     * started beside it (dev.env) */
    cr_expect(strstr(environ_, "BATON_KAFKA_FETCH_WAIT_MAX_MS=" BT_DEV_FETCH_WAIT_MS),
              "the fetch wait is not in the worker's environment");
    env_value(env_path, "BATON_KAFKA_FETCH_WAIT_MAX_MS", cmdline, sizeof(cmdline));
    cr_expect_str_eq(cmdline, BT_DEV_FETCH_WAIT_MS);
    /* each property reaches only the clients it is for: no warnings */
    BT_TEST_WAIT_UNTIL(ok, bt_test_count_lines_with(log_path, "partitions assigned") > 0,
                       30000);
    cr_assert(ok, "the worker never got partitions; see %s", log_path);
    cr_expect_eq(bt_test_count_lines_with(log_path, "will be ignored by this"), 0,
                 "a client was given a property it ignores; see %s", log_path);
    cr_assert_eq(kill(pid, SIGINT), 0);
    cr_assert_eq(bt_test_wait(pid, 20000), 0);
    snprintf(cmdline, sizeof(cmdline), "rm -rf '%s'", home);
    cr_expect_eq(system(cmdline), 0);
}

/* A reply's text, or its type when it has none (for messages). */
static const char *reply_text(const redisReply *reply)
{
    return !reply ? "(no reply)" : reply->str ? reply->str : "(no text)";
}

Test(dev, redis_credentials_reach_its_redis_and_children_but_no_command_line,
     .timeout = 60)
{
    char home[] = "/tmp/baton-test-dev-XXXXXX", home_env[64], prefix_env[64];
    char env_path[128], log_path[128], conf_path[160], redis[64], user[64];
    char children[256], cmdline[4096], environ_[16384];
    struct timeval tv = {.tv_sec = 2};
    redisContext *rc;
    redisReply *reply;
    long sched, rpid;
    pid_t pid;
    bool ok;

    cr_assert(mkdtemp(home));
    snprintf(home_env, sizeof(home_env), "BATON_HOME=%s", home);
    snprintf(prefix_env, sizeof(prefix_env), "BATON_PREFIX=%s", bt_test_prefix());
    snprintf(env_path, sizeof(env_path), "%s/dev.env", home);
    snprintf(log_path, sizeof(log_path), "%s/dev.log", home);
    snprintf(conf_path, sizeof(conf_path), "%s/redis-auth.conf", home);
    const char *const argv[] = {BT_BIN_DIR "/baton", "dev", "--no-worker", NULL};
    const char *const env[] = {home_env, prefix_env, "BATON_REDIS_USER=app",
                               "BATON_REDIS_PASSWORD=secret 9c2e", NULL};

    pid = bt_test_spawn(argv, env, log_path);
    cr_assert(pid > 0);
    BT_TEST_WAIT_UNTIL(ok, exists(env_path), 20000);
    cr_assert(ok, "no %s after 20 s; see %s", env_path, log_path);
    env_value(env_path, "BATON_REDIS", redis, sizeof(redis));
    env_value(env_path, "BATON_REDIS_USER", user, sizeof(user));
    cr_expect_str_eq(user, "app");

    rpid = child_named(pid, "redis-server", children, sizeof(children));
    cr_assert(rpid > 0, "no redis-server among %s", children);
    proc_text(rpid, "cmdline", cmdline, sizeof(cmdline));
    cr_expect_null(strstr(cmdline, "9c2e"), "on redis's command line: %s", cmdline);
    BT_TEST_WAIT_UNTIL(
        ok, (sched = child_named(pid, "baton-scheduler", children, sizeof(children))) > 0,
        20000);
    cr_assert(ok, "no baton-scheduler among %s", children);
    proc_text(sched, "cmdline", cmdline, sizeof(cmdline));
    proc_text(sched, "environ", environ_, sizeof(environ_));
    cr_expect_null(strstr(cmdline, "9c2e"), "on the command line: %s", cmdline);
    cr_expect(strstr(environ_, "BATON_REDIS_USER=app ") &&
                  strstr(environ_, "BATON_REDIS_PASSWORD=secret 9c2e "),
              "not in the scheduler's environment");

    rc = redisConnectWithTimeout("127.0.0.1", atoi(strchr(redis, ':') + 1), tv);
    cr_assert(rc && !rc->err);
    reply = redisCommand(rc, "PING");
    cr_expect(reply && reply->type == REDIS_REPLY_ERROR, "PING without AUTH: %s",
              reply_text(reply));
    freeReplyObject(reply);
    reply = redisCommand(rc, "AUTH app %s", "secret 9c2e");
    cr_expect(reply && reply->type == REDIS_REPLY_STATUS, "AUTH app: %s",
              reply_text(reply));
    freeReplyObject(reply);
    redisFree(rc);

    cr_assert_eq(kill(pid, SIGINT), 0);
    cr_assert_eq(bt_test_wait(pid, 20000), 0);
    cr_expect(!exists(conf_path), "%s is left behind", conf_path);
    snprintf(cmdline, sizeof(cmdline), "rm -rf '%s'", home);
    cr_expect_eq(system(cmdline), 0);
}

/* The cluster state as node port reports it ("" when nothing answers). */
static void cluster_info(int port, char *buf, size_t n)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "redis-cli -p %d CLUSTER INFO 2>&1", port);
    output_of(cmd, buf, n);
}

/* A `baton dev` of a test: its home (removed by dev_stop), the environment
 * the other commands read dev.env with, and its pid. */
struct dev_run {
    char home[48], home_env[80], prefix[32], prefix_env[64], env_path[128], log_path[128];
    const char *env[3];
    pid_t pid;
};

/* Starts `baton dev FLAG [VALUE] --plugin flows.so` in a fresh home and waits
 * for its dev.env. */
static void dev_start(struct dev_run *d, const char *flag, const char *value)
{
    char plugin[512];
    bool ok;

    snprintf(d->home, sizeof(d->home), "/tmp/baton-test-dev-XXXXXX");
    cr_assert(mkdtemp(d->home));
    snprintf(d->home_env, sizeof(d->home_env), "BATON_HOME=%s", d->home);
    snprintf(d->prefix, sizeof(d->prefix), "%s", bt_test_prefix());
    snprintf(d->prefix_env, sizeof(d->prefix_env), "BATON_PREFIX=%s", d->prefix);
    snprintf(d->env_path, sizeof(d->env_path), "%s/dev.env", d->home);
    snprintf(d->log_path, sizeof(d->log_path), "%s/dev.log", d->home);
    snprintf(plugin, sizeof(plugin), "%s/flows.so", BT_PLUGIN_DIR);
    d->env[0] = d->home_env;
    d->env[1] = d->prefix_env;
    d->env[2] = NULL;
    const char *argv[] = {BT_BIN_DIR "/baton", "dev", flag, value, NULL, NULL, NULL};
    int n = value ? 4 : 3;
    argv[n++] = "--plugin";
    argv[n] = plugin;
    d->pid = bt_test_spawn(argv, d->env, d->log_path);
    cr_assert(d->pid > 0);
    BT_TEST_WAIT_UNTIL(ok, exists(d->env_path), 60000);
    cr_assert(ok, "no %s after 60 s; see %s", d->env_path, d->log_path);
}

/* `baton start chain3 --id ID --input {"v":1} --wait` against d: its exit
 * status, its output in out. */
static int dev_start_chain3(const struct dev_run *d, const char *id, char *out, size_t n)
{
    const char *const start[] = {BT_BIN_DIR "/baton", "start",     "chain3", "--id", id,
                                 "--input",           "{\"v\":1}", "--wait", NULL};
    char start_log[160];
    int status;

    snprintf(start_log, sizeof(start_log), "%s/start.out", d->home);
    status = bt_test_wait(bt_test_spawn(start, d->env, start_log), 60000);
    bt_test_file_tail(start_log, out, n);
    return status;
}

/* Ctrl-C, a clean exit, and the home gone. */
static void dev_stop(struct dev_run *d)
{
    char cmd[128];

    cr_assert_eq(kill(d->pid, SIGINT), 0);
    cr_expect_eq(bt_test_wait(d->pid, 20000), 0, "baton dev did not exit 0 within 20 s");
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->home);
    cr_expect_eq(system(cmd), 0);
}

Test(dev, redis_cluster_runs_the_stack_on_a_redis_cluster_of_its_own, .timeout = 120)
{
    char redis[256], value[64], out[16384];
    struct dev_run d;
    int ports[3], n = 0, status;

    BT_TEST_RELEASE_ONLY();
    dev_start(&d, "--redis-cluster", NULL);
    env_value(d.env_path, "BATON_REDIS_CLUSTER", value, sizeof(value));
    cr_assert_str_eq(value, "1");
    env_value(d.env_path, "BATON_REDIS_SHARDS", value, sizeof(value));
    cr_assert_str_eq(value, "16");
    env_value(d.env_path, "BATON_REDIS", redis, sizeof(redis));
    for (char *p = redis; p && n < 3; p = strchr(p, ','), p = p ? p + 1 : NULL)
        ports[n++] = atoi(strchr(p, ':') + 1);
    cr_assert_eq(n, 3, "BATON_REDIS=\"%s\": three masters", redis);
    for (int i = 0; i < 3; i++) {
        cluster_info(ports[i], out, sizeof(out));
        cr_assert(strstr(out, "cluster_state:ok") && strstr(out, "cluster_known_nodes:3"),
                  "node %d: %s", ports[i], out);
    }

    /* the other commands find the cluster through dev.env */
    status = dev_start_chain3(&d, "on-cluster", out, sizeof(out));
    cr_assert_eq(status, 0, "baton start --wait: %d\n%s", status, out);
    cr_assert(strstr(out, "{\"v\":4}"), "%s", out);

    dev_stop(&d);
    for (int i = 0; i < 3; i++)
        cr_expect_eq(redis_pid(ports[i]), -1, "port %d still answers", ports[i]);
}

/* The keys matching pattern on the Redis at port, joined by spaces. */
static void keys_at(int port, const char *pattern, char *buf, size_t n)
{
    struct timeval tv = {.tv_sec = 2};
    redisContext *rc = redisConnectWithTimeout("127.0.0.1", port, tv);
    redisReply *reply = rc && !rc->err ? redisCommand(rc, "KEYS %s", pattern) : NULL;
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; reply && reply->type == REDIS_REPLY_ARRAY && i < reply->elements;
         i++)
        used += (size_t)snprintf(buf + used, used < n ? n - used : 0, "%s ",
                                 reply->element[i]->str);
    freeReplyObject(reply);
    redisFree(rc);
}

/* --redis-shards on one Redis: every program of the stack, and the commands
 * that read dev.env, use the same key layout (until 2026-12-05 only a
 * cluster passed it on: the children and dev.env went without shards). */
Test(dev, redis_shards_reach_its_children_and_dev_env, .timeout = 120)
{
    char redis[256], value[64], out[16384], pattern[128], want[128];
    struct dev_run d;
    int status;

    BT_TEST_RELEASE_ONLY();
    dev_start(&d, "--redis-shards", "4");
    env_value(d.env_path, "BATON_REDIS_SHARDS", value, sizeof(value));
    cr_expect_str_eq(value, "4");
    env_value(d.env_path, "BATON_REDIS_CLUSTER", value, sizeof(value));
    cr_expect_str_eq(value, "", "one Redis, not a cluster");

    status = dev_start_chain3(&d, "on-shards", out, sizeof(out));
    cr_expect_eq(status, 0, "baton start --wait: %d\n%s", status, out);

    /* the worker wrote the instance under its shard's prefix */
    env_value(d.env_path, "BATON_REDIS", redis, sizeof(redis));
    snprintf(pattern, sizeof(pattern), "%s:{on-shards}", d.prefix);
    keys_at(atoi(strchr(redis, ':') + 1), "*{on-shards}", out, sizeof(out));
    snprintf(want, sizeof(want), "%s:{", d.prefix);
    cr_expect(strstr(out, want) && !strstr(out, pattern),
              "the instance's keys are not under a shard's prefix: %s", out);

    dev_stop(&d);
}
