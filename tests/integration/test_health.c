/* The probes of baton-worker and baton-scheduler against a real stack:
 * /healthz answers while the process runs; /readyz is 503 until the worker's
 * consumers have their partitions, while Redis is down and while the broker
 * is, 200 otherwise. And the process_* families and baton_build_info on their
 * /metrics, read strictly and by promtool. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scrape.h"
#include "stack.h"

static struct bt_stack stack;

static void setup(void)
{
    cr_assert_eq(bt_stack_start(&stack, NULL), 0, "cannot start the stack");
}

static void teardown(void)
{
    bt_stack_stop(&stack);
}

static double wall_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* GET path: the status (-1 when nothing answers) and the body into body. */
static int probe(int port, const char *path, char *body, size_t n)
{
    int status;
    char *text = bt_test_http_get(port, path, &status);

    snprintf(body, n, "%s", text ? text : "");
    free(text);
    return text ? status : -1;
}

/* Waits until /readyz answers status with a body that starts with start;
 * body keeps the last answer, for the failure message. */
static bool readyz_becomes(int port, int status, const char *start, int timeout_ms,
                           char *body, size_t n)
{
    bool ok;

    BT_TEST_WAIT_UNTIL(ok,
                       probe(port, "/readyz", body, n) == status &&
                           !strncmp(body, start, strlen(start)),
                       timeout_ms);
    return ok;
}

static const char *type_of(const struct bt_test_expo *e, const char *family)
{
    for (int i = 0; i < e->n_families; i++)
        if (!strcmp(e->families[i], family))
            return e->types[i];
    return "(absent)";
}

static void scrape(int port, struct bt_test_expo *e, char **text)
{
    char why[512];
    int status;

    *text = bt_test_http_get(port, "/metrics", &status);
    cr_assert_not_null(*text, "no answer on port %d", port);
    cr_assert_eq(status, 200);
    cr_assert(bt_test_expo_parse(*text, e, why, sizeof(why)), "port %d: %s", port, why);
}

/* The process families of the process on port, spawned at spawned_at (wall
 * clock, s): present with their types, plausible, CPU time moving on. */
static void check_process_families(int port, double spawned_at)
{
    static struct bt_test_expo e;
    double cpu, start;
    char *text;
    int rc;
    bool ok;

    scrape(port, &e, &text);
    cr_assert_str_eq(type_of(&e, "process_cpu_seconds_total"), "counter");
    cr_assert_str_eq(type_of(&e, "process_open_fds"), "gauge");
    cr_assert_str_eq(type_of(&e, "process_resident_memory_bytes"), "gauge");
    cr_assert_str_eq(type_of(&e, "process_start_time_seconds"), "gauge");
    cr_assert_str_eq(type_of(&e, "baton_build_info"), "gauge");
    cr_assert_eq(bt_test_expo_value(&e, "baton_build_info", "version=\"" BT_VERSION "\""),
                 1);
    /* /proc/stat's boot time has whole seconds: a second of slack each way */
    start = bt_test_expo_value(&e, "process_start_time_seconds", "");
    cr_assert(start >= spawned_at - 1 && start <= wall_s() + 1,
              "started at %.2f, spawned at %.2f", start, spawned_at);
    cr_assert_gt(bt_test_expo_value(&e, "process_open_fds", ""), 3);
    cr_assert_gt(bt_test_expo_value(&e, "process_resident_memory_bytes", ""), 1 << 20);
    /* an idle scheduler may not have used a clock tick (10 ms) yet: 0 is
     * fair here, and the wait below asserts that it moves */
    cpu = bt_test_expo_value(&e, "process_cpu_seconds_total", "");
    cr_assert(cpu >= 0 && isfinite(cpu), "cpu %g", cpu);
    rc = bt_test_promtool(text);
    cr_assert(rc <= 0, "promtool check metrics rejected the output (status %d)", rc);
    free(text);
    /* a counter of this process's time: it moves while the process polls */
    BT_TEST_WAIT_UNTIL(ok,
                       (scrape(port, &e, &text), free(text),
                        bt_test_expo_value(&e, "process_cpu_seconds_total", "") > cpu),
                       20000);
    cr_assert(ok, "process_cpu_seconds_total stayed at %g", cpu);
}

Test(health, worker_is_ready_once_assigned_and_not_while_redis_is_down, .init = setup,
     .fini = teardown, .timeout = 120)
{
    char wport[16], body[256];
    double spawned_at = wall_s();
    int port, unused;
    pid_t worker;
    bool ok;

    cr_assert_eq(bt_test_free_ports(&port, &unused), 0);
    snprintf(wport, sizeof(wport), "%d", port);
    /* the group's protocol (real brokers' default), whose assignment comes
     * seconds after the join here; leases: test_partlease.c */
    worker = bt_stack_worker(
        &stack, "flows",
        (const char *const[]){"--metrics-port", wport, "--assignment", "group", NULL});
    cr_assert_gt(worker, 0);
    BT_TEST_WAIT_UNTIL(ok, probe(port, "/healthz", body, sizeof(body)) == 200, 10000);
    cr_assert(ok, "/healthz never answered 200 (last: \"%s\")", body);
    cr_assert_str_eq(body, "ok\n");

    /* the embedded cluster gives a new group its partitions 3 s after its
     * first member joined: Redis and Kafka are reached before that */
    cr_assert(readyz_becomes(port, 503, "not ready: waiting for partitions: 2 of 2", 3000,
                             body, sizeof(body)),
              "last answer: \"%s\"", body);
    cr_assert_eq(bt_test_count_lines_with(stack.log, "partitions assigned"), 0,
                 "ready must wait for the assignments: see %s", stack.log);
    cr_assert(readyz_becomes(port, 200, "ready\n", 30000, body, sizeof(body)),
              "last answer: \"%s\"", body);
    cr_assert_eq(bt_test_count_lines_with(stack.log, "partitions assigned\" count="), 2,
                 "both consumers assigned when ready: see %s", stack.log);
    check_process_families(port, spawned_at);

    /* its heartbeat meets the outage within a second */
    bt_stack_redis_down(&stack, "kill");
    cr_assert(readyz_becomes(port, 503, "not ready: redis unreachable\n", 10000, body,
                             sizeof(body)),
              "last answer: \"%s\"", body);
    cr_assert_eq(probe(port, "/healthz", body, sizeof(body)), 200, "alive all along");
    cr_assert_eq(bt_stack_redis_up(&stack), 0);
    cr_assert(readyz_becomes(port, 200, "ready\n", 20000, body, sizeof(body)),
              "last answer: \"%s\"", body);
    cr_assert_eq(probe(port, "/nowhere", body, sizeof(body)), 404);
    cr_assert_eq(bt_test_stop(worker, BT_TEST_STOP_MS), 0,
                 "the worker must exit cleanly");
}

Test(health, scheduler_is_ready_with_redis_and_kafka_only, .init = setup,
     .fini = teardown, .timeout = 120)
{
    char port_env[64], body[256];
    double spawned_at = wall_s();
    int port, unused;
    pid_t sched;
    bool ok;

    cr_assert_eq(bt_test_free_ports(&port, &unused), 0);
    snprintf(port_env, sizeof(port_env), "BATON_METRICS_PORT=%d", port);
    bt_stack_setenv(&stack, 0, "%s", port_env);
    /* the producer's statistics tell the broker is back: every 500 ms here */
    bt_stack_setenv(&stack, 1, "BATON_KAFKA_STATISTICS_INTERVAL_MS=500");
    sched = bt_stack_scheduler(&stack);
    bt_stack_setenv(&stack, 0, NULL);
    cr_assert_gt(sched, 0);
    BT_TEST_WAIT_UNTIL(ok, probe(port, "/healthz", body, sizeof(body)) == 200, 10000);
    cr_assert(ok, "/healthz never answered 200 (last: \"%s\")", body);
    cr_assert(readyz_becomes(port, 200, "ready\n", 10000, body, sizeof(body)),
              "no group consumer to wait for; last answer: \"%s\"", body);
    check_process_families(port, spawned_at);

    bt_stack_redis_down(&stack, "kill");
    cr_assert(readyz_becomes(port, 503, "not ready: redis unreachable\n", 10000, body,
                             sizeof(body)),
              "last answer: \"%s\"", body);
    cr_assert_eq(bt_stack_redis_up(&stack), 0);
    cr_assert(readyz_becomes(port, 200, "ready\n", 20000, body, sizeof(body)),
              "last answer: \"%s\"", body);

    cr_assert_eq(rd_kafka_mock_broker_set_down(stack.kafka.mcluster, 1), 0);
    cr_assert(readyz_becomes(port, 503, "not ready: kafka brokers down\n", 20000, body,
                             sizeof(body)),
              "last answer: \"%s\"", body);
    cr_assert_eq(probe(port, "/healthz", body, sizeof(body)), 200, "alive all along");
    cr_assert_eq(rd_kafka_mock_broker_set_up(stack.kafka.mcluster, 1), 0);
    cr_assert(readyz_becomes(port, 200, "ready\n", 30000, body, sizeof(body)),
              "last answer: \"%s\"", body);
    cr_assert_eq(bt_test_stop(sched, BT_TEST_STOP_MS), 0,
                 "the scheduler must exit cleanly");
}
