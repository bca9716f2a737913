/* Recovery of the embedded default: `baton dev` restarted with instances in
 * flight loses its Kafka messages (the cluster lives in its process) but not
 * Redis; every instance must still finish, driven by its timers and outbox.
 * A task no worker took has a timer that allows a day's wait for a worker:
 * the scheduler that finds a new cluster id times the attempts in flight
 * out at once (scheduler/kafka_change.h). */
#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "config.h"
#include "harness.h"
#include "kafka.h"

static char home[256], home_env[300], log_path[320], prefix_env[128];
static const char *prefix;

static void setup(void)
{
    char tmpl[] = "/tmp/bt-recovery-XXXXXX";

    cr_assert(mkdtemp(tmpl));
    snprintf(home, sizeof(home), "%s", tmpl);
    snprintf(home_env, sizeof(home_env), "BATON_HOME=%s", home);
    snprintf(log_path, sizeof(log_path), "%s/dev.log", home);
    prefix = bt_test_prefix();
    snprintf(prefix_env, sizeof(prefix_env), "BATON_PREFIX=%s", prefix);
}

static void teardown(void)
{
    char cmd[400];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", home);
    if (system(cmd) != 0)
        cr_log_info("cannot remove %s", home);
}

static pid_t start_dev(void)
{
    char env_path[400];
    bool up;
    const char *argv[] = {BT_BIN_DIR "/baton",
                          "dev",
                          "--plugin",
                          BT_PLUGIN_DIR "/flows.so",
                          "--plugin",
                          BT_PLUGIN_DIR "/timing.so",
                          NULL};
    /* short attempt timeouts: lost tasks are retried quickly after the restart */
    const char *env[] = {home_env, prefix_env, "BATON_ACTIVITY_TIMEOUT_MS=10000", NULL};
    pid_t pid = bt_test_spawn(argv, env, log_path);

    snprintf(env_path, sizeof(env_path), "%s/dev.env", home);
    BT_TEST_WAIT_UNTIL(up, access(env_path, R_OK) == 0, 20000);
    cr_assert(up, "baton dev did not write %s", env_path);
    return pid;
}

static struct bt_config dev_config(void)
{
    struct bt_config cfg;
    char name[] = "test", *argv[] = {name, NULL};
    char errstr[256];
    int argc = 1;

    setenv("BATON_HOME", home, 1);
    cr_assert_eq(bt_config_load(&cfg, &argc, argv, errstr, sizeof(errstr)), 0, "%s",
                 errstr);
    unsetenv("BATON_HOME");
    return cfg;
}

/* Logs the last warnings and errors of the programs' log, to tell a stall's
 * cause. */
static void log_tail(const char *path)
{
    static char ring[60][400];
    FILE *f = fopen(path, "r");
    char line[400];
    size_t n = 0;

    while (f && fgets(line, sizeof(line), f))
        if (strstr(line, "level=warn") || strstr(line, "level=error") ||
            strstr(line, "assigned"))
            snprintf(ring[n++ % 60], sizeof(ring[0]), "%s", line);
    if (f)
        fclose(f);
    for (size_t i = n > 60 ? n - 60 : 0; i < n; i++)
        cr_log_info("%s", ring[i % 60]);
}

static long count(redisContext *rc, const char *key)
{
    redisReply *reply = redisCommand(rc, "ZCARD %s", key);
    long n = reply && reply->type == REDIS_REPLY_INTEGER ? (long)reply->integer : -1;

    freeReplyObject(reply);
    return n;
}

Test(recovery, restarting_baton_dev_with_200_instances_in_flight_loses_none,
     .init = setup, .fini = teardown, .timeout = 180)
{
    const int n = 200;
    char errstr[256], topic[256], all[128], done[128];
    struct bt_kafka_batch batch = {0};
    bool ok;
    pid_t dev = start_dev();
    struct bt_config cfg = dev_config();
    rd_kafka_t *rk = bt_kafka_producer_new(&cfg, errstr, sizeof(errstr));
    int port = atoi(strrchr(cfg.redis, ':') + 1);
    redisContext *rc = redisConnect("127.0.0.1", port);

    cr_assert(rk && rc && !rc->err);
    snprintf(topic, sizeof(topic), "%s.events", prefix);
    snprintf(all, sizeof(all), "%s:idx:all", cfg.key_prefix);
    snprintf(done, sizeof(done), "%s:idx:completed", cfg.key_prefix);
    /* a mix: long sequential chains of naps, parallel naps, durable sleeps */
    for (int i = 0; i < n; i++) {
        char id[64];
        struct bt_msg msg = {.type = BT_MSG_START, .id = id};
        size_t len;
        snprintf(id, sizeof(id), "rec-%d", i);
        msg.workflow = (char *)(uintptr_t)(i % 2 ? "fanout3" : "sleeper");
        msg.body =
            i % 2 ? json_pack("{s:i}", "max_ms", 50) : json_pack("{s:i}", "ms", 3000);
        char *bytes = bt_codec_encode(&msg, &len);
        cr_assert_eq(bt_kafka_produce(rk, topic, id, strlen(id), bytes, len, &batch), 0);
        free(bytes);
        json_decref(msg.body);
    }
    cr_assert_eq(bt_kafka_wait(rk, &batch, 10000), 0);
    rd_kafka_destroy(rk);
    BT_TEST_WAIT_UNTIL(ok, count(rc, all) == n, 60000);
    cr_assert(ok, "only %ld of %d instances started", count(rc, all), n);
    cr_assert_lt(count(rc, done), n, "the restart must happen with instances in flight");
    cr_log_info("restarting with %ld of %d completed", count(rc, done), n);
    redisFree(rc);

    kill(dev, SIGINT);
    cr_assert_eq(bt_test_wait(dev, 30000), 0, "baton dev must stop cleanly");
    dev = start_dev();
    bt_config_release(&cfg);
    cfg = dev_config(); /* same data dir, maybe another port */
    port = atoi(strrchr(cfg.redis, ':') + 1);
    rc = redisConnect("127.0.0.1", port);
    cr_assert(rc && !rc->err);
    BT_TEST_WAIT_UNTIL(ok, count(rc, done) == n, 120000);
    cr_expect_eq(bt_test_count_lines_with(log_path, "kafka cluster changed"), 1,
                 "one scheduler saw the new cluster and timed the attempts out");
    if (!ok) {
        char failed[128], running[128];
        log_tail(log_path);
        snprintf(failed, sizeof(failed), "%s:idx:failed", cfg.key_prefix);
        snprintf(running, sizeof(running), "%s:idx:running", cfg.key_prefix);
        cr_assert(ok, "%ld of %d completed after the restart (failed %ld, running %ld)",
                  count(rc, done), n, count(rc, failed), count(rc, running));
    }
    redisFree(rc);
    bt_config_release(&cfg);
    kill(dev, SIGINT);
    cr_assert_eq(bt_test_wait(dev, 30000), 0);
}
