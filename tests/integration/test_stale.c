/* Stale tasks: a task whose attempt is no longer wanted (its step is done, the
 * attempt is not the journal's, the instance is unknown) is skipped by the
 * activity role, while wanted tasks around it run. (take_task.lua's answers
 * for several tasks in one call: test_scripts.c.) */
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

/* The task messages of instance "st-done", as they were produced, by seq. */
static bool collect_tasks(const json_t *msg, void *arg)
{
    const char *id = json_string_value(json_object_get(msg, "id"));
    char seq[32];

    if (id && !strcmp(id, "st-done")) {
        snprintf(seq, sizeof(seq), "%lld",
                 (long long)json_integer_value(json_object_get(msg, "seq")));
        json_object_set_new(arg, seq, json_deep_copy(msg));
    }
    return false;
}

static void produce_task(json_t *task)
{
    char *bytes = json_dumps(task, JSON_COMPACT);
    const char *id = json_string_value(json_object_get(task, "id"));

    cr_assert(bytes && id);
    cr_assert_eq(bt_stack_produce(&stack, "tasks.default", id, bytes, strlen(bytes)), 0);
    free(bytes);
}

Test(stale, stale_tasks_are_skipped_and_the_wanted_ones_beside_them_run, .init = setup,
     .fini = teardown, .timeout = 120)
{
    const int n = 60;
    /* every step through Kafka: the test reads the tasks there */
    const char *const args[] = {"--log-level", "debug", "--eager=0", NULL};
    pid_t worker = bt_stack_worker(&stack, "flows", args);
    struct bt_stack_results r;
    json_t *tasks = json_object(), *stale = json_array();
    size_t skipped;
    bool ok;

    cr_assert_gt(worker, 0);
    cr_assert_eq(
        bt_stack_start_wf(&stack, "chain3", "st-done", json_pack("{s:i}", "v", 0)), 0);
    BT_TEST_WAIT_UNTIL(
        ok, !strcmp(bt_stack_status(&stack, "st-done", (char[32]){0}, 32), "completed"),
        30000);
    cr_assert(ok, "st-done did not complete");
    bt_stack_read_all(&stack, "tasks.default", 20000, collect_tasks, tasks);
    cr_assert_eq(json_object_size(tasks), 3, "st-done's tasks: %zu of 3",
                 json_object_size(tasks));
    /* another worker: this one remembers the outcomes it sent and would skip
     * the copies before asking Redis (recent.h) */
    cr_assert_eq(bt_test_stop(worker, BT_TEST_STOP_MS), 0);
    worker = bt_stack_worker(&stack, "flows", args);
    cr_assert_gt(worker, 0);

    /* its three tasks again (steps done), one of them as an attempt the
     * journal never had, and one of an instance that does not exist */
    const char *seqs[] = {"0", "1", "2"};
    for (size_t i = 0; i < 3; i++) {
        cr_assert(json_object_get(tasks, seqs[i]), "no task of seq %s", seqs[i]);
        json_array_append(stale, json_object_get(tasks, seqs[i]));
    }
    json_t *other = json_deep_copy(json_object_get(tasks, "0"));
    json_object_set_new(other, "attempt", json_integer(2));
    json_array_append_new(stale, other);
    json_t *nobody = json_deep_copy(json_object_get(tasks, "1"));
    json_object_set_new(nobody, "id", json_string("st-nobody"));
    json_array_append_new(stale, nobody);

    /* interleaved with wanted work */
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof(id), "st-%d", i);
        cr_assert_eq(bt_stack_start_wf(&stack, "chain3", id, json_pack("{s:i}", "v", i)),
                     0);
        if (i % 12 == 0)
            produce_task(json_array_get(stale, (size_t)i / 12));
    }
    bt_stack_results(&stack, &r, n + 1, 60000);
    cr_assert_eq(r.distinct, n + 1, "results: %d of %d", r.distinct, n + 1);
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof(id), "st-%d", i);
        json_t *res = json_object_get(r.by_id, id);
        cr_assert_eq(
            json_integer_value(json_object_get(json_object_get(res, "result"), "v")),
            i + 3, "%s: every wanted step ran once", id);
    }
    json_decref(r.by_id);
    BT_TEST_WAIT_UNTIL(
        ok, (skipped = bt_test_count_lines_with(stack.log, "stale task skipped")) >= 5,
        20000);
    cr_assert_eq(skipped, 5, "stale tasks skipped: %zu of 5", skipped);
    json_decref(tasks);
    json_decref(stale);
    cr_assert_eq(bt_test_stop(worker, BT_TEST_STOP_MS), 0);
}
