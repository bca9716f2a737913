/* `baton bench` as a user runs it: its own `baton dev` stack, the chain and
 * retry workloads, one JSON object per workload. Checks what the figures
 * must be whatever the machine's speed (speed itself is never asserted). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <jansson.h>

#include "harness.h"

/* The value of key in o as a number; fails the test when it is missing. */
static double number(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);

    cr_assert(json_is_number(v), "%s: missing or not a number", key);
    return json_number_value(v);
}

Test(bench, chain_and_retry_report_their_figures_and_no_wrong_result, .timeout = 240)
{
    BT_TEST_RELEASE_ONLY();
    char cmd[512], err_path[64], line[16384], err[4096] = "";
    FILE *p;

    snprintf(err_path, sizeof(err_path), "/tmp/baton-test-bench-%d.err", (int)getpid());
    /* the Kafka path, whose messages per step are known; enough workflows
     * that each process's CPU spans several of the kernel's 10 ms ticks (60
     * gave redis-server 0 or 1 tick, and a figure of 0 now and then) */
    snprintf(cmd, sizeof(cmd),
             "BATON_EAGER=0 " BT_BIN_DIR
             "/baton bench chain retry --workflows 300 --json "
             "2>%s",
             err_path);
    p = popen(cmd, "r");
    bool chain = false, retry = false;
    int status;

    cr_assert(p);
    while (fgets(line, sizeof(line), p)) {
        json_t *o = json_loads(line, 0, NULL);
        const char *workload = json_string_value(json_object_get(o, "workload"));
        cr_assert(o && workload, "not a result line: %s", line);
        cr_expect_eq(number(o, "workflows"), 300, "%s", workload);
        cr_expect_gt(number(o, "wf_per_s"), 0, "%s", workload);
        cr_expect_eq(number(o, "dead_letters"), 0, "%s", workload);
        cr_expect_eq(number(o, "duplicate_results"), 0, "%s", workload);
        cr_expect_eq(number(o, "bad_results"), 0, "%s", workload);
        cr_expect_gt(number(o, "cpu_us_per_step_worker"), 0, "%s", workload);
        cr_expect_gt(number(o, "cpu_us_per_step_redis"), 0, "%s", workload);
        cr_expect_geq(number(o, "cpu_wait_pct_redis"), 0, "%s", workload);
        cr_expect_gt(number(o, "redis_calls_per_step"), 0, "%s", workload);
        cr_expect_gt(number(o, "kafka_msgs_per_step"), 0, "%s", workload);
        if (!strcmp(workload, "chain")) {
            chain = true;
            /* 3 steps: start, 3 tasks, 3 outcomes, a result per workflow at least */
            cr_expect_geq(number(o, "kafka_msgs_per_step"), 8.0 / 3 - 0.01);
        } else if (!strcmp(workload, "retry")) {
            retry = true;
            /* two 100 ms backoffs in a row: no run beats the floor */
            cr_expect_geq(number(o, "elapsed_s"), number(o, "retry_floor_s"));
        }
        json_decref(o);
    }
    status = pclose(p);
    bt_test_file_tail(err_path, err, sizeof(err));
    unlink(err_path);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "baton bench failed: %d; its stderr ends:\n%s", status, err);
    cr_expect(chain && retry, "a workload is missing: chain %d retry %d", chain, retry);
}

/* The retention workload: every finished run kept is made due at once and
 * the stack's scheduler archives and deletes them all (the run's chains
 * and the warm-up's); the figures are there and nothing is left behind. */
Test(bench, retention_deletes_every_finished_run_and_reports_its_cost, .timeout = 240)
{
    BT_TEST_RELEASE_ONLY();
    char cmd[512], err_path[64], line[16384], err[4096] = "";
    json_t *o = NULL;
    FILE *p;
    int status;

    snprintf(err_path, sizeof(err_path), "/tmp/baton-test-bench-%d.err", (int)getpid());
    snprintf(cmd, sizeof(cmd),
             BT_BIN_DIR "/baton bench retention --workflows 300 --json 2>%s", err_path);
    cr_assert(p = popen(cmd, "r"));
    while (fgets(line, sizeof(line), p)) {
        json_decref(o);
        o = json_loads(line, 0, NULL);
        cr_assert(o, "not a result line: %s", line);
    }
    status = pclose(p);
    bt_test_file_tail(err_path, err, sizeof(err));
    unlink(err_path);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "baton bench failed: %d; its stderr ends:\n%s", status, err);
    cr_assert(o, "no result line; stderr ends:\n%s", err);
    cr_expect_str_eq(json_string_value(json_object_get(o, "workload")), "retention");
    /* the 300 chains and the warm-up's 20, each one run */
    cr_expect_geq(number(o, "runs"), 300);
    cr_expect_gt(number(o, "runs_per_s"), 0);
    cr_expect_gt(number(o, "cpu_us_per_run_scheduler"), 0);
    cr_expect_gt(number(o, "cpu_us_per_run_redis"), 0);
    json_decref(o);
}
