/* Rebalances of the task topics while a worker holds tasks: a partition that
 * comes back to the worker that still runs (or queues) its tasks brings them
 * again from Kafka; the worker must not run a second copy of an attempt. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* How many "EXEC <pid> <attempt>" lines repeat an earlier one. */
static int runs_twice_in_one_process(void)
{
    FILE *f = fopen(stack.log, "r");
    json_t *seen = json_object();
    char line[512];
    int twice = 0;

    cr_assert(f);
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "EXEC ", 5))
            continue;
        if (json_object_get(seen, line))
            twice++;
        json_object_set_new(seen, line, json_true());
    }
    fclose(f);
    json_decref(seen);
    return twice;
}

Test(rebalance, a_worker_never_runs_two_copies_of_one_attempt_at_once, .init = setup,
     .fini = teardown, .timeout = 120)
{
    const int n = 12;
    const char *const args[] = {"--concurrency", "2", NULL};
    pid_t a = bt_stack_worker(&stack, "overlap", args), b;
    struct bt_stack_results r;
    bool ok;

    cr_assert_gt(a, 0);
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof(id), "hold-%d", i);
        cr_assert_eq(
            bt_stack_start_wf(&stack, "one_hold", id, json_pack("{s:i}", "ms", 1500)), 0);
    }
    /* a rebalance while the worker runs two steps and queues the others */
    BT_TEST_WAIT_UNTIL(ok, bt_test_count_lines_with(stack.log, "EXEC ") >= 2, 30000);
    cr_assert(ok, "the worker never started a step");
    b = bt_stack_worker(&stack, "overlap", args);
    cr_assert_gt(b, 0);
    bt_stack_results(&stack, &r, n, 90000);
    cr_assert_eq(r.distinct, n, "results: %d of %d", r.distinct, n);
    json_decref(r.by_id);
    size_t runs = bt_test_count_lines_with(stack.log, "EXEC ");
    cr_log_info("executions %zu for %d steps, copies not run %zu, queued left %zu", runs,
                n, bt_test_count_lines_with(stack.log, "not run twice"),
                bt_test_count_lines_with(stack.log, "left to the new owner"));
    cr_expect_eq(bt_test_count_lines_with(stack.log, "OVERLAP "), 0,
                 "a worker ran two copies of one attempt at once");
    cr_expect_eq(runs_twice_in_one_process(), 0, "a worker ran one attempt twice");
    /* only the two running when the partitions moved may run once more */
    cr_expect_leq(runs, (size_t)n + 2, "queued tasks of moved partitions ran twice");
    cr_assert_eq(bt_test_stop(a, BT_TEST_STOP_MS), 0);
    cr_assert_eq(bt_test_stop(b, BT_TEST_STOP_MS), 0);
}

/* Steps of 1 s under a rate of 2 per second in all: the first worker runs
 * one and keeps the others waiting for a token. A second worker joins and
 * takes partitions; the waiting tasks of those partitions are left to it, not
 * run by the first one as well when it gets their tokens (both copies would
 * run: an attempt is skipped only once it is done). */
Test(rebalance, tasks_waiting_for_a_token_are_left_to_their_partitions_new_owner,
     .init = setup, .fini = teardown, .timeout = 120)
{
    const int n = 24;
    const char *const args[] = {"--concurrency", "4", NULL};
    pid_t a = bt_stack_worker(&stack, "overlap", args), b;
    struct bt_stack_results r;
    bool ok;

    cr_assert_gt(a, 0);
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof(id), "slot-%d", i);
        cr_assert_eq(
            bt_stack_start_wf(&stack, "one_paced", id, json_pack("{s:i}", "ms", 1000)),
            0);
    }
    BT_TEST_WAIT_UNTIL(ok, bt_test_count_lines_with(stack.log, "EXEC ") >= 1, 30000);
    cr_assert(ok, "the worker never started a step");
    b = bt_stack_worker(&stack, "overlap", args);
    cr_assert_gt(b, 0);
    bt_stack_results(&stack, &r, n, 90000);
    cr_assert_eq(r.distinct, n, "results: %d of %d", r.distinct, n);
    json_decref(r.by_id);
    size_t runs = bt_test_count_lines_with(stack.log, "EXEC ");
    cr_log_info("executions %zu for %d steps, waiting left %zu", runs, n,
                bt_test_count_lines_with(stack.log, "left to the new owner"));
    cr_expect_eq(runs_twice_in_one_process(), 0, "a worker ran one attempt twice");
    /* only the one running when the partitions moved may run once more */
    cr_expect_leq(runs, (size_t)n + 1, "waiting tasks of moved partitions ran twice");
    cr_assert_eq(bt_test_stop(a, BT_TEST_STOP_MS), 0);
    cr_assert_eq(bt_test_stop(b, BT_TEST_STOP_MS), 0);
}

/* A worker whose buffer is full pauses its task partitions; a rebalance
 * while paused revokes them, its buffer drains (queued tasks of revoked
 * partitions are left to their new owner) and it resumes with none
 * assigned. The partitions it gets back must fetch: librdkafka keeps a
 * partition's pause across an assignment. The watchdog is off here, so that
 * a partition left paused fails the test instead of being mended. */
Test(rebalance, partitions_given_back_after_a_pause_fetch_again, .init = setup,
     .fini = teardown, .timeout = 180)
{
    const int n = 600;
    const char *const args[] = {"--concurrency", "1", NULL};
    struct bt_stack_results r;
    pid_t a, b;
    bool ok;

    bt_stack_setenv(&stack, 0, "BATON_WATCHDOG_MS=0");
    a = bt_stack_worker(&stack, "overlap", args);
    cr_assert_gt(a, 0);
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof(id), "pause-%d", i);
        cr_assert_eq(
            bt_stack_start_wf(&stack, "one_hold", id, json_pack("{s:i}", "ms", 10)), 0);
    }
    /* more tasks than its buffer holds (4 x threads + 256): it pauses */
    BT_TEST_WAIT_UNTIL(ok, bt_test_count_lines_with(stack.log, "EXEC ") >= 20, 30000);
    cr_assert(ok, "the worker never started a step");
    b = bt_stack_worker(&stack, "overlap", args);
    cr_assert_gt(b, 0);
    bt_stack_results(&stack, &r, n, 120000);
    cr_assert_eq(r.distinct, n, "results: %d of %d (a partition stayed paused?)",
                 r.distinct, n);
    json_decref(r.by_id);
    cr_assert_eq(bt_test_stop(a, BT_TEST_STOP_MS), 0);
    cr_assert_eq(bt_test_stop(b, BT_TEST_STOP_MS), 0);
}
