/* Retention: a finished instance (and each run an instance ended by
 * continue-as-new) is archived to <prefix>.archive and deleted from Redis a
 * retention period after it finished, by the real baton-scheduler; never a
 * running one, never one whose retention has not ended, and never before
 * Kafka confirmed its archive. `baton delete` does the same at once. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive.h"
#include "clock.h"
#include "kafka.h"
#include "scrape.h"
#include "stack.h"

static struct bt_stack stack;

/* The programs' retention settings, before any of them starts. */
static void retention(const char *all, const char *types)
{
    bt_stack_setenv(&stack, 0, "BATON_RETENTION=%s", all);
    bt_stack_setenv(&stack, 1, "BATON_RETENTION_TYPES=%s", types ? types : "");
}

static void setup(void)
{
    cr_assert_eq(bt_stack_start(&stack, NULL), 0, "cannot start the stack");
}

static void teardown(void)
{
    bt_stack_stop(&stack);
}

TestSuite(retention, .init = setup, .fini = teardown, .timeout = 180);

static long long integer(const char *fmt, const char *a, const char *b)
{
    redisReply *reply = bt_stack_redis(&stack, fmt, a, b);
    long long n = reply && reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1;

    freeReplyObject(reply);
    return n;
}

/* Tests that read or write keys a sharded store splits (a single claim, a
 * claim of their own, the backfill) run without shards only. */
#define UNSHARDED_ONLY()                                                                 \
    do {                                                                                 \
        if (stack.shards > 0)                                                            \
            cr_skip_test("written for the keys without shards");                         \
    } while (0)

static bool exists(const char *id)
{
    char key[256];

    return integer("EXISTS %s", bt_stack_key(&stack, id, "", key, sizeof(key)), NULL) ==
           1;
}

/* Keys of instance id but its tombstone. */
static long long keys_of(const char *id)
{
    char key[256], pattern[300];
    long all;

    snprintf(pattern, sizeof(pattern), "%s*",
             bt_stack_key(&stack, id, "", key, sizeof(key)));
    /* over every master: KEYS names no key a cluster could route by */
    all = bt_stack_count_keys(&stack, pattern);
    bt_stack_key(&stack, id, ":deleted", key, sizeof(key));
    return all < 0 ? -1 : all - (integer("EXISTS %s", key, NULL) == 1);
}

/* baton-scheduler with extra arguments (NULL-terminated). */
static pid_t scheduler_with(const char *const *args)
{
    const char *argv[8] = {BT_BIN_DIR "/baton-scheduler"};
    int argc = 1;

    for (; *args && argc < 7; args++)
        argv[argc++] = *args;
    argv[argc] = NULL;
    return bt_test_spawn(argv, stack.envp, stack.log);
}

/* Sample name of the scheduler's /metrics on port, or NAN. */
static double scraped(int port, const char *name)
{
    static struct bt_test_expo expo;
    char why[256];
    int status;
    char *text = bt_test_http_get(port, "/metrics", &status);
    double v = NAN;

    if (text && bt_test_expo_parse(text, &expo, why, sizeof(why)))
        v = bt_test_expo_count(&expo, name, "");
    free(text);
    return v;
}

static void start(const char *type, const char *id)
{
    cr_assert_eq(bt_stack_start_wf(&stack, type, id, json_pack("{s:i}", "v", 1)), 0);
}

/* Whether every instance "<name>-<i>", i < n, has status (or, "", is gone). */
static bool all_are(const char *name, int n, const char *status)
{
    char id[64], buf[32];

    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "%s-%d", name, i);
        if (strcmp(bt_stack_status(&stack, id, buf, sizeof(buf)), status))
            return false;
    }
    return true;
}

static void await_all(const char *name, int n, const char *status, int timeout_ms)
{
    bool ok;

    BT_TEST_WAIT_UNTIL(ok, all_are(name, n, status), timeout_ms);
    cr_assert(ok, "not every %s-* is \"%s\" after %d ms", name, status, timeout_ms);
}

/* The history of every run of instances "<name>-<i>", i < n, each with runs
 * runs, read from Redis: "<id>|<run>" -> records. */
static void snapshot(json_t *into, const char *name, int n, int runs)
{
    char id[64], key[96], suffix[32];

    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "%s-%d", name, i);
        for (int run = 1; run <= runs; run++) {
            snprintf(suffix, sizeof(suffix), run < runs ? ":history:%d" : ":history",
                     run);
            snprintf(key, sizeof(key), "%s|%d", id, run);
            json_object_set_new(into, key, bt_stack_history(&stack, id, suffix, NULL));
        }
    }
}

/* Archive messages by "<id>|<run>": an array of each one read. */
static bool collect(const json_t *msg, void *arg)
{
    json_t *by_run = arg, *list;
    char key[320];

    snprintf(key, sizeof(key), "%s|%lld", json_string_value(json_object_get(msg, "id")),
             (long long)json_integer_value(json_object_get(msg, "run")));
    if (!(list = json_object_get(by_run, key)))
        json_object_set_new(by_run, key, list = json_array());
    json_array_append(list, (json_t *)(uintptr_t)msg);
    return false;
}

static json_t *archived(void)
{
    json_t *by_run = json_object();

    bt_stack_read_all(&stack, "archive", 20000, collect, by_run);
    return by_run;
}

/* Each run in want is archived exactly once, whole, with its status; returns
 * how many runs the archive holds. */
static size_t expect_archived_once(const json_t *archive, const json_t *want)
{
    const char *key;
    json_t *history;

    json_object_foreach((json_t *)(uintptr_t)want, key, history)
    {
        const json_t *list = json_object_get(archive, key);
        const json_t *msg = json_array_get(list, 0);
        cr_expect_eq(json_array_size(list), 1, "%s archived %zu times", key,
                     json_array_size(list));
        cr_expect(json_array_size(history) > 0, "%s: no history read", key);
        cr_expect(msg && json_equal(json_object_get(msg, "history"), history),
                  "%s: the archived history differs from Redis's", key);
        cr_expect_eq(json_integer_value(json_object_get(msg, "v")), 1);
        cr_expect_str_eq(json_string_value(json_object_get(msg, "type")), "archive");
    }
    return json_object_size(archive);
}

Test(retention, deletes_exactly_the_expired_finished_instances)
{
    json_t *histories = json_object(), *archive;
    pid_t worker, scheduler;
    int port, unused;
    char port_arg[16];
    bool ok;

    /* always_fails keeps 1 h: finished, but not expired */
    retention("1s", "always_fails=1h");
    worker = bt_stack_worker(&stack, "flows", NULL);
    for (int i = 0; i < 20; i++) {
        char id[32];
        snprintf(id, sizeof(id), "done-%d", i);
        start("chain3", id);
    }
    for (int i = 0; i < 5; i++) {
        char id[32];
        snprintf(id, sizeof(id), "kept-%d", i);
        start("always_fails", id);
        snprintf(id, sizeof(id), "open-%d", i);
        start("await_review", id);
    }
    await_all("done", 20, "completed", 60000);
    await_all("kept", 5, "failed", 60000);
    await_all("open", 5, "running", 60000);
    snapshot(histories, "done", 20, 1);
    cr_assert_eq(bt_stack_zcard(&stack, "retention"), 25,
                 "every finished run is due once");

    /* a running instance in the retention set (none is put there, but were
     * one) is left alone, and leaves the set */
    char kp[128];
    cr_assert_eq(integer("ZADD %s:retention 0 1|open-1",
                         bt_stack_kp_of(&stack, "open-1", kp, sizeof(kp)), NULL),
                 1);
    cr_assert_eq(bt_test_free_ports(&port, &unused), 0);
    snprintf(port_arg, sizeof(port_arg), "%d", port);
    scheduler = scheduler_with((const char *const[]){"--metrics-port", port_arg, NULL});
    cr_assert_gt(scheduler, 0);
    await_all("done", 20, "", 30000);
    /* the backlog gauge is read from Redis every 2 s */
    BT_TEST_WAIT_UNTIL(ok,
                       scraped(port, "baton_retention_deleted_total") == 20 &&
                           scraped(port, "baton_retention_archived_total") == 20 &&
                           scraped(port, "baton_retention_backlog") == 0 &&
                           scraped(port, "baton_retention_awaiting_kafka") == 0,
                       10000);
    cr_expect(ok, "/metrics: deleted %g archived %g backlog %g awaiting %g",
              scraped(port, "baton_retention_deleted_total"),
              scraped(port, "baton_retention_archived_total"),
              scraped(port, "baton_retention_backlog"),
              scraped(port, "baton_retention_awaiting_kafka"));
    for (int i = 0; i < 20; i++) {
        char id[32];
        snprintf(id, sizeof(id), "done-%d", i);
        cr_expect_eq(keys_of(id), 0, "%s left keys behind", id);
        char key[256];
        cr_expect_eq(integer("EXISTS %s",
                             bt_stack_key(&stack, id, ":deleted", key, sizeof(key)),
                             NULL),
                     1, "%s has a tombstone", id);
        cr_expect_eq(integer("ZRANK %s:idx:all %s",
                             bt_stack_kp_of(&stack, id, kp, sizeof(kp)), id),
                     -1);
    }
    /* the others stay whole: finished but not expired, and running */
    for (int i = 0; i < 5; i++) {
        char id[32];
        snprintf(id, sizeof(id), "kept-%d", i);
        cr_expect(exists(id) && keys_of(id) >= 3, "%s was touched", id);
        snprintf(id, sizeof(id), "open-%d", i);
        cr_expect(exists(id) && keys_of(id) >= 3, "%s was touched", id);
    }
    cr_expect_eq(bt_stack_zcard(&stack, "retention"), 5);
    cr_expect_eq(bt_stack_zcard(&stack, "retention:leased"), 0);
    char out[8192];
    cr_expect_eq(BT_STACK_BATON(&stack, out, "stats"), 0, "%s", out);
    cr_expect(strstr(out, "finished runs kept until their retention ends: 5 (due for "
                          "archive and deletion now: 0, being archived: 0)"),
              "%s", out);
    archive = archived();
    cr_expect_eq(expect_archived_once(archive, histories), 20,
                 "only the expired ones are archived");
    const json_t *one = json_array_get(json_object_get(archive, "done-3|1"), 0);
    cr_expect_str_eq(json_string_value(json_object_get(one, "status")), "completed");
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(one, "result"), "v")),
                 4);
    json_decref(archive);

    /* a running one that finishes expires like the others */
    static const char signal[] = "{\"v\":1,\"type\":\"signal\",\"id\":\"open-0\","
                                 "\"name\":\"review\",\"payload\":1}";
    cr_assert_eq(bt_stack_produce(&stack, "events", "open-0", signal, strlen(signal)), 0);
    BT_TEST_WAIT_UNTIL(ok, !exists("open-0"), 30000);
    cr_expect(ok, "open-0 finished and was deleted after its retention");
    cr_expect(exists("open-1"));
    archive = archived();
    cr_expect_eq(json_array_size(json_object_get(archive, "open-0|1")), 1);
    json_decref(archive);
    json_decref(histories);
    bt_test_stop(scheduler, BT_TEST_STOP_MS);
    bt_test_kill9(worker);
}

/* Every archive message read validates against schemas/archive.schema.json
 * (python3-jsonschema, as `make test` uses for the golden cases). */
static void expect_valid(const json_t *archive)
{
    char path[] = "/tmp/baton-archive-XXXXXX", cmd[1024];
    const char *key;
    json_t *list, *msg;
    size_t i;
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;

    cr_assert(f);
    json_object_foreach((json_t *)(uintptr_t)archive, key, list)
        json_array_foreach(list, i, msg) json_dumpf(msg, f, JSON_COMPACT),
        fputc('\n', f);
    fclose(f);
    snprintf(cmd, sizeof(cmd),
             "python3 -c 'import json, sys; from jsonschema import Draft202012Validator "
             "as V; v = V(json.load(open(\"%s/schemas/archive.schema.json\"))); "
             "[v.validate(json.loads(l)) for l in open(\"%s\")]'",
             BT_SOURCE_DIR, path);
    cr_expect_eq(system(cmd), 0, "an archive message does not match its schema");
    unlink(path);
}

/* Makes every run in the retention set due now (its retention ended). */
static void expire_all(void)
{
    for (int shard = 0; shard < bt_stack_shard_count(&stack); shard++) {
        char kp[128];
        bt_stack_shard_kp(&stack, shard, kp, sizeof(kp));
        redisReply *reply = bt_stack_redis(
            &stack, "ZUNIONSTORE %s:retention 1 %s:retention WEIGHTS 0", kp, kp);
        cr_assert(reply && reply->type == REDIS_REPLY_INTEGER);
        freeReplyObject(reply);
    }
}

/* Two real schedulers claim from one retention set at once: each run (of
 * 400 chains and of 4 instances that continued as new twice) reaches the
 * archive exactly once, and every instance goes. The loops sleep, so the
 * schedulers run from the start; the runs' retention (1 h) ends when the test
 * says so, once their histories are read. */
Test(retention, two_schedulers_archive_each_run_exactly_once)
{
    const char *looping[] = {"--plugin", BT_PLUGIN_DIR "/looping.so", NULL};
    json_t *histories = json_object(), *archive;
    pid_t worker, schedulers[2];
    const int n = 400, loops = 4;

    retention("1h", NULL);
    worker = bt_stack_worker(&stack, "flows", looping);
    for (int s = 0; s < 2; s++)
        cr_assert_gt(schedulers[s] = bt_stack_scheduler(&stack), 0);
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof(id), "c-%d", i);
        start("chain3", id);
    }
    for (int i = 0; i < loops; i++) {
        char id[32];
        snprintf(id, sizeof(id), "loop-%d", i);
        cr_assert_eq(
            bt_stack_start_wf(&stack, "looper", id,
                              json_pack("{s:i, s:i, s:i}", "i", 0, "until", 3, "sum", 0)),
            0);
    }
    await_all("c", n, "completed", 90000);
    await_all("loop", loops, "completed", 90000);
    snapshot(histories, "c", n, 1);
    snapshot(histories, "loop", loops, 3);

    expire_all();
    await_all("c", n, "", 60000);
    await_all("loop", loops, "", 60000);
    for (int i = 0; i < loops; i++) {
        char id[32];
        snprintf(id, sizeof(id), "loop-%d", i);
        cr_expect_eq(keys_of(id), 0, "%s left keys (earlier runs?)", id);
    }
    archive = archived();
    cr_expect_eq(expect_archived_once(archive, histories), (size_t)(n + 3 * loops));
    const json_t *run1 = json_array_get(json_object_get(archive, "loop-0|1"), 0);
    const json_t *run3 = json_array_get(json_object_get(archive, "loop-0|3"), 0);
    cr_expect_str_eq(json_string_value(json_object_get(run1, "status")), "continued");
    cr_expect_str_eq(json_string_value(json_object_get(run3, "status")), "completed");
    expect_valid(archive);
    cr_expect_eq(bt_stack_zcard(&stack, "retention"), 0);
    cr_expect_eq(bt_stack_zcard(&stack, "retention:leased"), 0);
    json_decref(archive);
    json_decref(histories);
    for (int s = 0; s < 2; s++)
        cr_expect_eq(bt_test_stop(schedulers[s], BT_TEST_STOP_MS), 0);
    bt_test_kill9(worker);
}

/* Instances "<name>-<i>", i < n, still in Redis. */
static int left(const char *name, int n)
{
    char id[64];
    int k = 0;

    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "%s-%d", name, i);
        k += exists(id);
    }
    return k;
}

/* Outbox hashes in Redis. */
static long long outboxes(void)
{
    return bt_stack_count_instance_keys(&stack, ":outbox");
}

/* n chains "<name>-<i>" run to completion by a worker, which then stops. */
static void completed_chains(const char *name, int n)
{
    pid_t worker = bt_stack_worker(&stack, "flows", NULL);

    cr_assert_gt(worker, 0);
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof(id), "%s-%d", name, i);
        start("chain3", id);
    }
    await_all(name, n, "completed", 60000);
    cr_assert_eq(bt_test_stop(worker, 20000), 0);
}

/* With the broker down, the scheduler claims and produces but deletes
 * nothing: the archive is not confirmed. Stopped then, it puts the runs
 * back. Once Kafka is back, every instance is archived once and deleted. */
Test(retention, a_kafka_outage_deletes_nothing_until_the_archive_is_confirmed)
{
    json_t *histories = json_object(), *archive;
    const int n = 30;
    pid_t scheduler;
    bool ok;

    UNSHARDED_ONLY();

    retention("1s", NULL);
    /* stopped cleanly, the worker leaves no result unsent: the outbox sweep
     * has nothing to send while the broker is down */
    completed_chains("k", n);
    snapshot(histories, "k", n, 1);
    BT_TEST_WAIT_UNTIL(ok, outboxes() == 0, 10000);
    cr_assert(ok, "the results left the outboxes");

    cr_assert_eq(rd_kafka_mock_broker_set_down(stack.kafka.mcluster, 1), 0);
    cr_assert_gt(scheduler = bt_stack_scheduler(&stack), 0);
    BT_TEST_WAIT_UNTIL(ok, bt_stack_zcard(&stack, "retention:leased") == n, 30000);
    cr_assert(ok, "the scheduler claimed the expired runs");
    /* a window to see nothing go (the producer keeps its messages queued for
     * message.timeout.ms, 5 min, far longer) */
    int64_t until = bt_test_now_ms() + 3000;
    while (bt_test_now_ms() < until) {
        cr_assert_eq(left("k", n), n, "deleted while its archive was not confirmed");
        bt_test_sleep_ms(100);
    }
    /* stopped meanwhile, it does not wait for the broker: its runs are put
     * back, whole, for the next scheduler */
    cr_expect_eq(bt_test_stop(scheduler, 20000), 0, "the scheduler stopped cleanly");
    cr_expect_eq(bt_stack_zcard(&stack, "retention:leased"), 0);
    cr_expect_eq(bt_stack_zcard(&stack, "retention"), n);
    cr_assert_eq(left("k", n), n);
    cr_assert_eq(rd_kafka_mock_broker_set_up(stack.kafka.mcluster, 1), 0);
    cr_assert_gt(scheduler = bt_stack_scheduler(&stack), 0);
    BT_TEST_WAIT_UNTIL(ok, left("k", n) == 0, 60000);
    cr_assert(ok, "%d instances left once Kafka was back", left("k", n));
    archive = archived();
    cr_expect_eq(expect_archived_once(archive, histories), (size_t)n);
    json_decref(archive);
    json_decref(histories);
    bt_test_stop(scheduler, BT_TEST_STOP_MS);
}

/* Redis refuses the delete of a claimed batch, and keeps refusing it (the
 * failpoint sends a script Redis does not have): the scheduler tries again
 * a second later each time, says so, and deletes nothing; it does not retry
 * at every round of its loop (a spin at full CPU, thousands of refusals a
 * second). */
Test(retention, a_delete_redis_keeps_refusing_is_tried_again_each_second)
{
    const char *refused = "retention delete refused by redis";
    const int n = 10;
    pid_t scheduler;
    size_t before, after;
    bool ok;

    UNSHARDED_ONLY();

    retention("1s", NULL);
    completed_chains("q", n);
    bt_stack_setenv(&stack, 2, "BATON_FAILPOINTS=retention-delete-refused");
    cr_assert_gt(scheduler = bt_stack_scheduler(&stack), 0);
    BT_TEST_WAIT_UNTIL(ok, bt_test_count_lines_with(stack.log, refused) >= 1, 30000);
    cr_assert(ok, "the scheduler tried to delete the claimed runs");
    /* a window of 4 s, to count the tries in it */
    before = bt_test_count_lines_with(stack.log, refused);
    int64_t until = bt_test_now_ms() + 4000;
    while (bt_test_now_ms() < until) {
        cr_assert_eq(left("q", n), n, "deleted though Redis refused");
        bt_test_sleep_ms(100);
    }
    after = bt_test_count_lines_with(stack.log, refused);
    cr_expect(after - before >= 2 && after - before <= 6,
              "%zu refusals in 4 s: one a second expected", after - before);
    cr_expect_eq(bt_stack_zcard(&stack, "retention:leased"), n, "the claims are kept");
    bt_test_stop(scheduler, BT_TEST_STOP_MS);
}

/* Redis is killed (SIGKILL) and restarted while a batch of runs is claimed
 * and its archive produced but not confirmed (the broker is down meanwhile,
 * to hold the batch there): the claims survive in Redis's append-only file,
 * and once Kafka is back the scheduler deletes them in the restarted Redis.
 * Every instance is archived exactly once and deleted. */
Test(retention, a_redis_restart_during_deletion_loses_nothing)
{
    json_t *histories = json_object(), *archive;
    const int n = 200;
    pid_t worker, scheduler;
    int port, unused;
    char port_arg[16];
    bool ok;

    UNSHARDED_ONLY();

    retention("1s", NULL);
    worker = bt_stack_worker(&stack, "flows", NULL);
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof(id), "r-%d", i);
        start("chain3", id);
    }
    await_all("r", n, "completed", 120000);
    snapshot(histories, "r", n, 1);
    bt_test_stop(worker, BT_TEST_STOP_MS);

    cr_assert_eq(rd_kafka_mock_broker_set_down(stack.kafka.mcluster, 1), 0);
    cr_assert_eq(bt_test_free_ports(&port, &unused), 0);
    snprintf(port_arg, sizeof(port_arg), "%d", port);
    scheduler = scheduler_with((const char *const[]){"--metrics-port", port_arg, NULL});
    cr_assert_gt(scheduler, 0);
    /* claimed, and produced: a kill while it still reads the histories puts
     * the claims back at once, which is another test's */
    BT_TEST_WAIT_UNTIL(ok,
                       bt_stack_zcard(&stack, "retention:leased") == 100 &&
                           scraped(port, "baton_retention_awaiting_kafka") == 100,
                       30000);
    cr_assert(ok, "the scheduler claimed a batch and produced its archives: %g",
              scraped(port, "baton_retention_awaiting_kafka"));
    cr_assert_eq(bt_stack_redis_restart(&stack, "kill"), 0);
    long long leased = bt_stack_zcard(&stack, "retention:leased");
    cr_assert_eq(leased, 100, "the claims survive the restart: %lld leased", leased);
    cr_assert_eq(left("r", n), n);
    cr_assert_eq(rd_kafka_mock_broker_set_up(stack.kafka.mcluster, 1), 0);
    BT_TEST_WAIT_UNTIL(ok, left("r", n) == 0, 60000);
    cr_assert(ok, "%d instances left after the restart", left("r", n));
    archive = archived();
    cr_expect_eq(expect_archived_once(archive, histories), (size_t)n);
    cr_expect_eq(bt_stack_zcard(&stack, "retention:leased"), 0);
    json_decref(archive);
    json_decref(histories);
    bt_test_stop(scheduler, BT_TEST_STOP_MS);
}

/* `baton delete`: a running instance is refused, a finished one is archived
 * and deleted at once (default retention: 7 days), not while Kafka is down,
 * and both `describe` and `history` then say so. */
Test(retention, baton_delete_archives_a_finished_instance_and_refuses_a_running_one)
{
    char out[8192];
    pid_t worker = bt_stack_worker(&stack, "flows", NULL);
    json_t *history, *archive;
    const json_t *msg;

    start("chain3", "del-0");
    start("await_review", "del-open");
    bool ok;

    BT_TEST_WAIT_UNTIL(ok, exists("del-open"), 30000);
    cr_assert(ok, "del-open started");
    await_all("del", 1, "completed", 60000);

    cr_expect_eq(BT_STACK_BATON(&stack, out, "delete", "del-open"), 1, "%s", out);
    cr_expect(strstr(out, "del-open is running: only a finished instance can be deleted"),
              "%s", out);
    cr_expect(exists("del-open") && keys_of("del-open") >= 3);

    history = bt_stack_history(&stack, "del-0", ":history", NULL);
    /* Kafka down: nothing deleted, exit 3, and the run waits for a retry */
    cr_assert_eq(rd_kafka_mock_broker_set_down(stack.kafka.mcluster, 1), 0);
    cr_expect_eq(BT_STACK_BATON(&stack, out, "delete", "del-0"), 3, "%s", out);
    cr_expect(strstr(out, "cannot archive to Kafka topic") &&
                  strstr(out, "0 of 1 runs deleted"),
              "%s", out);
    cr_expect_eq(keys_of("del-0"), 3, "del-0 is whole");
    cr_expect_eq(bt_stack_zcard(&stack, "retention"), 1, "put back");
    cr_assert_eq(rd_kafka_mock_broker_set_up(stack.kafka.mcluster, 1), 0);
    cr_expect_eq(BT_STACK_BATON(&stack, out, "delete", "del-0"), 0, "%s", out);
    cr_expect(strstr(out, "deleted del-0: 1 run archived to"), "%s", out);
    cr_expect_eq(keys_of("del-0"), 0);
    archive = archived();
    msg = json_array_get(json_object_get(archive, "del-0|1"), 0);
    cr_expect_eq(json_array_size(json_object_get(archive, "del-0|1")), 1);
    cr_expect(msg && json_equal(json_object_get(msg, "history"), history));
    expect_valid(archive);

    cr_expect_eq(BT_STACK_BATON(&stack, out, "describe", "del-0"), 1, "%s", out);
    cr_expect(strstr(out, "del-0 was archived to") && strstr(out, "and deleted at"), "%s",
              out);
    cr_expect_eq(BT_STACK_BATON(&stack, out, "history", "del-0"), 1, "%s", out);
    cr_expect(strstr(out, "del-0 was archived to"), "%s", out);
    cr_expect_eq(BT_STACK_BATON(&stack, out, "delete", "del-0"), 1, "%s", out);
    cr_expect_eq(BT_STACK_BATON(&stack, out, "describe", "nobody"), 1, "%s", out);
    cr_expect(strstr(out, "no workflow instance \"nobody\" (a finished instance is "
                          "deleted when its retention ends"),
              "%s", out);
    json_decref(archive);
    json_decref(history);
    bt_test_kill9(worker);
}

/* delete --query: every finished match is due now and the scheduler archives
 * and deletes it (retention 7 d would keep it); a running match is kept, and
 * so is a finished one the query does not match. */
Test(retention, delete_by_query_hands_every_finished_match_to_the_scheduler)
{
    char out[8192];
    enum { N = 30 };
    char id[32];

    retention("7d", NULL);
    pid_t worker = bt_stack_worker(&stack, "flows", NULL);
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "dq-%d", i);
        start("chain3", id);
    }
    start("fanout3", "other-0");
    start("await_review", "dq-open");
    await_all("dq", N, "completed", 60000);
    await_all("other", 1, "completed", 60000);

    cr_assert_eq(BT_STACK_BATON(&stack, out, "delete", "--query", "type=chain3"), 2, "%s",
                 out);
    cr_assert(strstr(out, "pass --yes"), "%s", out);
    cr_assert_eq(
        BT_STACK_BATON(&stack, out, "delete", "--query", "type!=fanout3", "--yes"), 0,
        "%s", out);
    cr_assert(strstr(out, "30 of 30 instances due for deletion now"), "%s", out);
    pid_t sch = scheduler_with((const char *const[]){NULL});
    await_all("dq", N, "", 60000);
    cr_expect(exists("dq-open"), "a running instance is never deleted");
    cr_expect(exists("other-0"), "an instance the query does not match is kept");
    json_t *archive = archived();
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "dq-%d|1", i);
        cr_expect_eq(json_array_size(json_object_get(archive, id)), 1, "%s archived", id);
    }
    json_decref(archive);
    bt_test_kill9(sch);
    bt_test_kill9(worker);
}

/* A history longer than max-payload goes in parts, each under it, in order
 * on the id's partition: put together they are the whole history. */
Test(retention, a_long_history_is_archived_in_parts_under_max_payload)
{
    json_t *history, *archive;
    const json_t *parts, *msg;
    pid_t worker, scheduler;
    size_t i;
    bool ok;

    retention("1s", NULL);
    worker = bt_stack_worker(&stack, "flows", NULL);
    char pad[301];
    memset(pad, 'x', 300);
    pad[300] = '\0';
    /* each step's input and result carry it: 300 bytes in each record */
    cr_assert_eq(bt_stack_start_wf(&stack, "chain3", "long-0",
                                   json_pack("{s:i, s:s}", "v", 1, "pad", pad)),
                 0);
    await_all("long", 1, "completed", 60000);
    history = bt_stack_history(&stack, "long-0", ":history", NULL);
    cr_assert_gt(json_dumpb(history, NULL, 0, JSON_COMPACT), 2048,
                 "the history is long enough to need parts at 1 KiB");
    scheduler = scheduler_with((const char *const[]){"--max-payload", "1024", NULL});
    BT_TEST_WAIT_UNTIL(ok, !exists("long-0"), 30000);
    cr_assert(ok, "long-0 was deleted");
    archive = archived();
    parts = json_object_get(archive, "long-0|1");
    cr_assert_gt(json_array_size(parts), 1, "one message for a run over max-payload");
    json_t *joined = json_array();
    json_array_foreach(parts, i, msg)
    {
        char *text = json_dumps(msg, JSON_COMPACT);
        cr_expect_leq(strlen(text), 1024, "part %zu is %zu bytes", i + 1, strlen(text));
        free(text);
        cr_expect_eq(json_integer_value(json_object_get(msg, "part")), (json_int_t)i + 1);
        cr_expect_eq(json_integer_value(json_object_get(msg, "parts")),
                     (json_int_t)json_array_size(parts));
        json_array_extend(joined, json_object_get(msg, "history"));
    }
    cr_expect(json_equal(joined, history), "the parts put together are the history");
    expect_valid(archive);
    json_decref(joined);
    json_decref(archive);
    json_decref(history);
    bt_test_stop(scheduler, BT_TEST_STOP_MS);
    bt_test_kill9(worker);
}

/* The settings of the stack's programs, for the test's own archive calls. */
static void stack_config(struct bt_config *cfg)
{
    char name[] = "test", *argv[] = {name, NULL}, errstr[256];
    int argc = 1;

    setenv("BATON_BROKERS", stack.kafka.brokers, 1);
    setenv("BATON_REDIS", stack.redis.addr, 1);
    setenv("BATON_PREFIX", stack.prefix, 1);
    setenv("BATON_EMBEDDED", "1", 1);
    setenv("BATON_HOME", stack.redis.dir, 1);
    cr_assert_eq(bt_config_load(cfg, &argc, argv, errstr, sizeof(errstr)), 0, "%s",
                 errstr);
}

/* The test plays a scheduler that claims the due runs, archives them (Kafka
 * confirms) and dies before it deletes them; once its claims expire, the
 * real scheduler takes them over, finds each archive on the topic and
 * deletes the runs without archiving them again. */
Test(retention, a_run_taken_over_from_a_dead_scheduler_is_archived_once)
{
    json_t *histories = json_object(), *archive;
    struct bt_archive_run *runs = NULL;
    struct bt_config cfg;
    struct bt_store *store;
    rd_kafka_t *rk, *reader = NULL;
    char errstr[256];
    const int n = 5;
    size_t claimed = 0;
    pid_t worker, scheduler;
    bool ok;

    UNSHARDED_ONLY();

    retention("1s", NULL);
    worker = bt_stack_worker(&stack, "flows", NULL);
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof(id), "t-%d", i);
        start("chain3", id);
    }
    await_all("t", n, "completed", 60000);
    snapshot(histories, "t", n, 1);
    cr_assert_eq(bt_test_stop(worker, 20000), 0);
    BT_TEST_WAIT_UNTIL(ok, outboxes() == 0, 10000);
    cr_assert(ok, "the results left the outboxes");

    stack_config(&cfg);
    cr_assert(store = bt_store_new(&cfg, errstr, sizeof(errstr)), "%s", errstr);
    cr_assert(rk = bt_kafka_producer_new(&cfg, errstr, sizeof(errstr)), "%s", errstr);
    BT_TEST_WAIT_UNTIL(ok, bt_archive_backlog(store, bt_clock_now_ms()) == n, 10000);
    cr_assert(ok, "the runs are due");
    cr_assert_eq(bt_archive_claim(store, 0, bt_clock_now_ms(), bt_archive_lease_ms(&cfg),
                                  100, NULL, 0, &runs, &claimed),
                 0);
    cr_assert_eq(claimed, (size_t)n);
    cr_assert_eq(
        bt_archive_prepare(store, &cfg, rk, &reader, runs, claimed, bt_clock_now_ms()),
        0);
    for (size_t i = 0; i < claimed; i++)
        cr_assert_eq(bt_kafka_wait(rk, &runs[i].batch, 10000), 0, "archived");
    bt_archive_runs_free(runs, claimed); /* and dies: no delete */
    rd_kafka_destroy(rk);

    /* its claims expire */
    redisReply *held =
        bt_stack_redis(&stack, "ZRANGE %s:retention:leased 0 -1", stack.prefix);
    cr_assert(held && held->elements == (size_t)n);
    for (size_t i = 0; i < held->elements; i++) {
        char now[32];
        snprintf(now, sizeof(now), "%lld", (long long)bt_clock_now_ms() - 1);
        freeReplyObject(bt_stack_redis(&stack, "ZADD %s:retention:leased XX %s %s",
                                       stack.prefix, now, held->element[i]->str));
    }
    freeReplyObject(held);
    cr_assert_gt(scheduler = bt_stack_scheduler(&stack), 0);
    BT_TEST_WAIT_UNTIL(ok, left("t", n) == 0, 30000);
    cr_assert(ok, "%d instances left", left("t", n));
    archive = archived();
    cr_expect_eq(expect_archived_once(archive, histories), (size_t)n);
    cr_expect_eq(bt_test_count_lines_with(stack.log, "archive found sent"), (size_t)n);
    json_decref(archive);
    json_decref(histories);
    bt_store_destroy(store);
    bt_config_release(&cfg);
    bt_test_stop(scheduler, BT_TEST_STOP_MS);
}

/* Instances that finished before retention existed have no run in the
 * retention set: the scheduler's one pass over the status indexes gives them
 * theirs (due when they finished plus their retention), and they go like the
 * others; running ones get none. */
Test(retention, instances_finished_before_retention_existed_are_backfilled)
{
    json_t *histories = json_object(), *archive;
    const int n = 3;
    pid_t worker, scheduler;
    bool ok;

    UNSHARDED_ONLY();

    retention("1s", NULL);
    worker = bt_stack_worker(&stack, "flows", NULL);
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof(id), "old-%d", i);
        start("chain3", id);
    }
    start("await_review", "live-0");
    await_all("old", n, "completed", 60000);
    await_all("live", 1, "running", 60000);
    snapshot(histories, "old", n, 1);
    cr_assert_eq(bt_test_stop(worker, 20000), 0);
    BT_TEST_WAIT_UNTIL(ok, outboxes() == 0, 10000);
    cr_assert(ok, "the results left the outboxes");
    /* as an older baton left them */
    cr_assert_eq(integer("DEL %s:retention", stack.prefix, NULL), 1);

    cr_assert_gt(scheduler = bt_stack_scheduler(&stack), 0);
    BT_TEST_WAIT_UNTIL(ok, left("old", n) == 0, 30000);
    cr_assert(ok, "%d old instances left", left("old", n));
    BT_TEST_WAIT_UNTIL(
        ok, integer("EXISTS %s:retention:backfilled", stack.prefix, NULL) == 1, 10000);
    cr_expect(ok, "the pass is marked done");
    cr_expect(exists("live-0") && keys_of("live-0") >= 3, "the running one is whole");
    cr_expect_eq(bt_stack_zcard(&stack, "retention"), 0);
    archive = archived();
    cr_expect_eq(expect_archived_once(archive, histories), (size_t)n);
    json_decref(archive);
    json_decref(histories);
    bt_test_stop(scheduler, 10000);
}
