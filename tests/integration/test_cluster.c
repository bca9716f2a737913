/* The engine on a real Redis Cluster (3 masters, 3 replicas, on loopback)
 * with its instances over 8 shards: steps, fan-out, durable timers, retries,
 * the CLI, two masters killed in turn mid-run, and one that hangs. The whole engine suite
 * runs there too with BT_TEST_REDIS_CLUSTER=1 (tests/harness/stack.h). */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stack.h"

#define SHARDS 8

static struct bt_stack stack;

static void setup(void)
{
    cr_assert_eq(bt_stack_start_cluster(&stack, NULL, SHARDS, false), 0,
                 "cannot start the stack on a redis cluster");
}

/* with a replica per master, for the failover */
static void setup_replicas(void)
{
    cr_assert_eq(bt_stack_start_cluster(&stack, NULL, SHARDS, true), 0,
                 "cannot start the stack on a redis cluster");
}

static void teardown(void)
{
    bt_stack_stop(&stack);
}

/* each test names its .init: a suite's would run before a test's own */
TestSuite(cluster, .fini = teardown, .timeout = 240);

static pid_t worker(void)
{
    char timing[512];
    pid_t pid;

    snprintf(timing, sizeof(timing), "%s/timing.so", BT_PLUGIN_DIR);
    pid =
        bt_stack_worker(&stack, "flows", (const char *const[]){"--plugin", timing, NULL});
    cr_assert_gt(pid, 0);
    return pid;
}

static void start(const char *type, const char *id, json_t *input)
{
    cr_assert_eq(bt_stack_start_wf(&stack, type, id, input), 0, "cannot start %s", id);
}

static const json_t *result_of(const struct bt_stack_results *r, const char *id)
{
    const json_t *res = json_object_get(r->by_id, id);

    cr_assert_not_null(res, "no result for %s", id);
    cr_assert_str_eq(json_string_value(json_object_get(res, "status")), "completed",
                     "%s did not complete", id);
    return json_object_get(res, "result");
}

/* The masters that serve the shards' hash tags. */
static int masters_of_shards(void)
{
    bool seen[BT_TEST_RCLUSTER_NODES] = {false};
    int n = 0;

    for (int shard = 0; shard < SHARDS; shard++) {
        char tag[16];
        int m;

        snprintf(tag, sizeof(tag), "{%d}", shard);
        m = bt_test_rcluster_master_of(stack.cluster, tag);
        cr_assert_geq(m, 0);
        n += !seen[m];
        seen[m] = true;
    }
    return n;
}

Test(cluster, runs_steps_timers_retries_and_the_cli_on_a_redis_cluster, .init = setup)
{
    enum { CHAINS = 200, FANS = 20, SLEEPS = 20, RETRIES = 10, TAGGED = 12 };
    const int total = CHAINS + FANS + SLEEPS + RETRIES + TAGGED;
    struct bt_stack_results r;
    BT_TEST_RELEASE_ONLY(); /* CI time: redis_cluster's tests run the router there */
    pid_t w = worker(), sched = bt_stack_scheduler(&stack);
    char id[64], out[65536];

    cr_assert_gt(sched, 0);
    cr_expect_eq(masters_of_shards(), 3, "8 shards should land on all 3 masters");
    for (int i = 0; i < CHAINS; i++) {
        snprintf(id, sizeof(id), "chain-%d", i);
        start("chain3", id, json_pack("{s:i}", "v", i));
    }
    for (int i = 0; i < FANS; i++) {
        snprintf(id, sizeof(id), "fan-%d", i);
        start("fanout3", id, json_pack("{s:i}", "v", i));
    }
    for (int i = 0; i < SLEEPS; i++) {
        snprintf(id, sizeof(id), "sleep-%d", i);
        start("sleeper", id, json_pack("{s:i}", "ms", 300 + 10 * i));
    }
    for (int i = 0; i < RETRIES; i++) {
        snprintf(id, sizeof(id), "retry-%d", i);
        start("retry_or_compensate", id,
              json_pack("{s:i, s:i}", "fail_times", 2, "max_attempts", 5));
    }
    for (int i = 0; i < TAGGED; i++) {
        snprintf(id, sizeof(id), "tagged-%d", i);
        start("tagged", id,
              json_pack("{s:{s:s, s:i}}", "attrs", "brand", i % 3 ? "other" : "acme",
                        "tier", i));
    }
    bt_stack_results(&stack, &r, total, 120000);
    cr_assert_eq(r.distinct, total, "results: %d distinct of %d (raw %d)", r.distinct,
                 total, r.raw);
    cr_expect_eq(r.raw, total, "one result per instance");
    for (int i = 0; i < CHAINS; i++) {
        snprintf(id, sizeof(id), "chain-%d", i);
        cr_assert_eq(json_integer_value(json_object_get(result_of(&r, id), "v")), i + 3,
                     "%s: each step applied exactly once", id);
    }
    for (int i = 0; i < FANS; i++) {
        snprintf(id, sizeof(id), "fan-%d", i);
        result_of(&r, id);
    }
    for (int i = 0; i < SLEEPS; i++) {
        snprintf(id, sizeof(id), "sleep-%d", i);
        cr_assert(json_is_true(json_object_get(result_of(&r, id), "slept")));
    }
    for (int i = 0; i < RETRIES; i++) {
        snprintf(id, sizeof(id), "retry-%d", i);
        cr_assert_eq(json_integer_value(json_object_get(
                         json_object_get(result_of(&r, id), "result"), "attempt")),
                     3, "%s: the third attempt succeeds", id);
    }
    json_decref(r.by_id);

    /* the CLI on the cluster: an instance's history, the list over every
     * shard, the counts */
    cr_assert_eq(BT_STACK_BATON(&stack, out, "history", "retry-0", "--json"), 0, "%s",
                 out);
    cr_expect(strstr(out, "\"activity_failed\"") && strstr(out, "\"finished\""), "%s",
              out);
    cr_assert_eq(BT_STACK_BATON(&stack, out, "list", "--status", "completed", "--limit",
                                "1000", "--json"),
                 0, "%s", out);
    int lines = 0;
    for (const char *p = out; (p = strchr(p, '\n')); p++)
        lines++;
    cr_expect_eq(lines, total, "list --json: %d lines", lines);
    /* search attributes over the shards' indexes: 4 of the 12 are acme's */
    cr_assert_eq(BT_STACK_BATON(&stack, out, "list", "--query",
                                "type=tagged AND brand=acme AND tier>=3", "--json"),
                 0, "%s", out);
    lines = 0;
    for (const char *p = out; (p = strchr(p, '\n')); p++)
        lines++;
    cr_expect_eq(lines, 3, "acme with tier >= 3 (3, 6, 9): %d lines\n%s", lines, out);
    cr_assert_eq(BT_STACK_BATON(&stack, out, "stats", "--json"), 0, "%s", out);
    json_t *stats = json_loads(out, 0, NULL);
    cr_assert_not_null(stats, "%s", out);
    cr_expect_eq(
        json_integer_value(json_object_get(
            json_object_get(json_object_get(stats, "types"), "chain3"), "completed")),
        CHAINS, "%s", out);
    json_decref(stats);
    cr_assert_eq(bt_test_stop(sched, BT_TEST_STOP_MS), 0);
    cr_assert_eq(bt_test_stop(w, BT_TEST_STOP_MS), 0);
}

static bool count(const json_t *msg, void *arg)
{
    (void)msg;
    ++*(int *)arg;
    return false;
}

/* One result for each of the chains "<name>-<i>", i < n, every step of each
 * applied once, and nothing dead-lettered; frees r's results. */
static void each_applied_once(struct bt_stack_results *r, const char *name, int n)
{
    int dead_letters = 0;
    char id[64];

    cr_expect_eq(r->raw, n, "one result per instance");
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "%s-%d", name, i);
        cr_assert_eq(json_integer_value(json_object_get(result_of(r, id), "v")), i + 3,
                     "%s: each step applied exactly once", id);
    }
    json_decref(r->by_id);
    bt_stack_read_all(&stack, "dlq", 2000, count, &dead_letters);
    cr_expect_eq(dead_letters, 0, "nothing dead-lettered");
}

/* The master serving hash tag tag, other than not (-1: any). */
static int master_serving(const char *tag, int not )
{
    int m = bt_test_rcluster_master_of(stack.cluster, tag);

    cr_assert_geq(m, 0, "no master serves %s", tag);
    return m == not ? -1 : m;
}

/* Two workers and two schedulers while starts keep coming: the master of
 * shard 0 dies, its replica takes over, then the master of another shard
 * dies too, with commits, takes, timers and sweeps in flight on both. A
 * write acknowledged before a death is on the replica (--redis-wait-ms),
 * and a batch that a dead master cut is tried again whole. */
Test(cluster, two_masters_killed_in_turn_lose_nothing, .init = setup_replicas)
{
    enum { N = 1500, FIRST_KILL = 300, FAILED_OVER = 600, SECOND_KILL = 900 };
    struct bt_stack_results r;
    BT_TEST_RELEASE_ONLY();
    pid_t procs[4] = {worker(), worker(), bt_stack_scheduler(&stack),
                      bt_stack_scheduler(&stack)};
    int first = -1, second = -1;
    char id[64], tag[16];

    cr_assert(procs[2] > 0 && procs[3] > 0);
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "chain-%d", i);
        start("chain3", id, json_pack("{s:i}", "v", i));
        if (i == FIRST_KILL) {
            first = master_serving("{0}", -1);
            bt_test_redis_kill(&stack.cluster->node[first]);
        } else if (i == FAILED_OVER) {
            cr_assert_eq(bt_test_rcluster_await_failover(stack.cluster, first, 30000), 0,
                         "no replica took over");
        } else if (i == SECOND_KILL) {
            /* an original master (nodes 0-2) that still has its replica */
            for (int shard = 1; shard < SHARDS && second < 0; shard++) {
                snprintf(tag, sizeof(tag), "{%d}", shard);
                second = master_serving(tag, first);
                second = second < 3 ? second : -1;
            }
            cr_assert_geq(second, 0, "no other original master serves a shard");
            bt_test_redis_kill(&stack.cluster->node[second]);
        }
    }
    /* no wait for the second failover: the harness cannot tell it with a
     * node dead already; the results say whether the stack got past it */
    bt_stack_results(&stack, &r, N, 150000);
    /* a crash is the cause of anything missing, not a slow failover */
    for (int p = 0; p < 4; p++)
        cr_assert_eq(bt_test_wait(procs[p], 0), -1, "%s %d exited during the failovers",
                     p < 2 ? "worker" : "scheduler", p % 2 + 1);
    /* the first few missing ones and where they are, should any be */
    char missing[512] = "";
    for (int i = 0, k = 0; i < N && r.distinct < N && k < 8; i++) {
        char status[32], at[128];
        snprintf(id, sizeof(id), "chain-%d", i);
        if (json_object_get(r.by_id, id))
            continue;
        snprintf(at, sizeof(at), " %s=%s", id,
                 bt_stack_status(&stack, id, status, sizeof(status)));
        strncat(missing, at, sizeof(missing) - strlen(missing) - 1);
        k++;
    }
    cr_assert_eq(r.distinct, N, "results: %d distinct of %d (raw %d), missing:%s",
                 r.distinct, N, r.raw, missing);
    each_applied_once(&r, "chain", N);
    for (int p = 4; p-- > 0;)
        cr_assert_eq(bt_test_stop(procs[p], BT_TEST_STOP_MS), 0);
}

/* Counts the timer events per instance id into arg (a JSON object). */
static bool count_timers(const json_t *msg, void *arg)
{
    const char *type = json_string_value(json_object_get(msg, "type"));
    const char *id = json_string_value(json_object_get(msg, "id"));

    if (type && id && !strcmp(type, "timer"))
        json_object_set_new(
            arg, id, json_integer(json_integer_value(json_object_get(arg, id)) + 1));
    return false;
}

Test(cluster, two_schedulers_on_the_sharded_timers_fire_each_timer_once, .init = setup)
{
    enum { N = 80 };
    struct bt_stack_results r;
    BT_TEST_RELEASE_ONLY();
    pid_t w = worker(), s1 = bt_stack_scheduler(&stack), s2 = bt_stack_scheduler(&stack);
    char id[64];

    cr_assert(s1 > 0 && s2 > 0);
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "nap-%d", i);
        start("sleeper", id, json_pack("{s:i}", "ms", 200 + 5 * i));
    }
    bt_stack_results(&stack, &r, N, 60000);
    cr_assert_eq(r.distinct, N, "results: %d distinct of %d", r.distinct, N);
    json_decref(r.by_id);
    /* what went to Kafka, where a timer fired twice would show */
    json_t *fired = json_object();
    bt_stack_read_all(&stack, "events", 5000, count_timers, fired);
    cr_assert_eq(json_object_size(fired), N, "timer events for %zu instances",
                 json_object_size(fired));
    const char *key;
    json_t *n;
    json_object_foreach(fired, key, n)
    {
        cr_assert_eq(json_integer_value(n), 1, "%s: its sleep fired %lld times", key,
                     (long long)json_integer_value(n));
    }
    json_decref(fired);
    cr_assert_eq(bt_test_stop(s1, BT_TEST_STOP_MS), 0);
    cr_assert_eq(bt_test_stop(s2, BT_TEST_STOP_MS), 0);
    cr_assert_eq(bt_test_stop(w, BT_TEST_STOP_MS), 0);
}

/* A master that hangs (SIGSTOP: its connections open, nothing answered) is
 * failed over by the cluster a second later, but a client blocked on it
 * waits on its old connection: before redis-timeout-ms, for good, and the
 * shard's instances stopped. Now each call gives up after the timeout (1.5 s
 * here), reads the slot map again and goes to the new master. */
Test(cluster, a_master_that_hangs_is_failed_over_and_loses_nothing,
     .init = setup_replicas)
{
    enum { N = 600, WORKING = 100, HANG = 150, FAILED_OVER = 400 };
    struct bt_stack_results r;
    BT_TEST_RELEASE_ONLY();
    bt_stack_setenv(&stack, 0, "BATON_REDIS_TIMEOUT_MS=1500");
    pid_t procs[3] = {worker(), worker(), bt_stack_scheduler(&stack)};
    int hung = -1;
    char id[64];

    cr_assert_gt(procs[2], 0);
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "hang-%d", i);
        start("chain3", id, json_pack("{s:i}", "v", i));
        if (i == WORKING) { /* the workers hold connections to every master */
            bt_stack_results(&stack, &r, WORKING + 1, 60000);
            json_decref(r.by_id);
            cr_assert_eq(r.distinct, WORKING + 1, "the workers did not start working");
        } else if (i == HANG) {
            hung = master_serving("{0}", -1);
            kill(stack.cluster->node[hung].pid, SIGSTOP);
        } else if (i == FAILED_OVER) {
            cr_assert_eq(bt_test_rcluster_await_failover(stack.cluster, hung, 30000), 0,
                         "no replica took over");
        }
    }
    bt_stack_results(&stack, &r, N, 90000);
    kill(stack.cluster->node[hung].pid, SIGCONT); /* it rejoins as a replica */
    for (int p = 0; p < 3; p++)
        cr_assert_eq(bt_test_wait(procs[p], 0), -1, "%s exited during the failover",
                     p < 2 ? "a worker" : "the scheduler");
    cr_assert_eq(r.distinct, N, "results: %d distinct of %d (raw %d)", r.distinct, N,
                 r.raw);
    each_applied_once(&r, "hang", N);
    cr_expect_geq(bt_test_count_lines_with(stack.log, "no answer within 1500 ms"), 1,
                  "no call was given up on the hung master");
    for (int p = 3; p-- > 0;)
        cr_assert_eq(bt_test_stop(procs[p], BT_TEST_STOP_MS), 0);
}
