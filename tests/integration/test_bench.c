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
    FILE *p, *f;

    snprintf(err_path, sizeof(err_path), "/tmp/baton-test-bench-%d.err", (int)getpid());
    /* the Kafka path, whose messages per step are known */
    snprintf(cmd, sizeof(cmd),
             "BATON_EAGER=0 " BT_BIN_DIR "/baton bench chain retry --workflows 60 --json "
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
        cr_expect_eq(number(o, "workflows"), 60, "%s", workload);
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
    if ((f = fopen(err_path, "r"))) { /* its last words, for a failure */
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        fseek(f, size > (long)sizeof(err) - 1 ? size - (long)sizeof(err) + 1 : 0,
              SEEK_SET);
        err[fread(err, 1, sizeof(err) - 1, f)] = '\0';
        fclose(f);
    }
    unlink(err_path);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "baton bench failed: %d; its stderr ends:\n%s", status, err);
    cr_expect(chain && retry, "a workload is missing: chain %d retry %d", chain, retry);
}
