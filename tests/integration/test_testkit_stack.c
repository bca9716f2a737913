/* The test kit against the real stack (a worker on Kafka and Redis): the
 * same workflow gives the same history both ways (timestamps, due times,
 * deadlines, worker names and who sent an event aside), and a history
 * recorded on the stack replays in the kit on the code that made it, and not
 * on a deploy that reordered its steps. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "baton_test.h"
#include "install.h"
#include "stack.h"

static struct bt_stack stack;
static pid_t worker = -1;

static void setup(void)
{
    cr_assert_eq(bt_stack_start(&stack, NULL), 0, "cannot start the stack");
    worker = bt_stack_worker(&stack, "versioned_v1", NULL);
    cr_assert_gt(worker, 0);
}

static void teardown(void)
{
    bt_test_stop(worker, BT_TEST_STOP_MS);
    bt_stack_stop(&stack);
}

TestSuite(testkit_stack, .init = setup, .fini = teardown, .timeout = 120);

/* Waits until instance id has a record ev; returns its whole history. */
static json_t *history_once(const char *id, const char *ev)
{
    int64_t deadline = bt_test_now_ms() + 60000;

    while (bt_test_now_ms() < deadline) {
        json_t *found = bt_stack_history(&stack, id, NULL, ev);
        size_t n = json_array_size(found);
        json_decref(found);
        if (n)
            return bt_stack_history(&stack, id, NULL, NULL);
        bt_test_sleep_ms(20);
    }
    cr_assert_fail("no %s record for %s within 60 s:\n%s", ev, id,
                   bt_test_tail(stack.log, (char[4096]){0}, 4096));
    return NULL;
}

/* Runs "versioned" (a, a "go" signal, b) on the stack. */
static json_t *run_on_stack(const char *id)
{
    char out[2048];

    cr_assert_eq(bt_stack_start_wf(&stack, "versioned", id, json_pack("{s:i}", "n", 7)),
                 0);
    json_decref(history_once(id, "signal_wait"));
    cr_assert_eq(BT_STACK_BATON(&stack, out, "signal", id, "go"), 0, "%s", out);
    return history_once(id, "finished");
}

static void strip_times(json_t *records)
{
    size_t i;
    json_t *rec;

    json_array_foreach(records, i, rec)
    {
        json_object_del(rec, "ts");
        json_object_del(rec, "worker");
        json_object_del(rec, "by"); /* who sent an event: user@host on the stack */
        json_object_del(rec, "due");
        json_object_del(rec, "deadline");
    }
}

Test(testkit_stack, the_kit_and_the_stack_write_the_same_history)
{
    json_t *real = run_on_stack("both-ways"), *kit = json_array();
    bt_test_env *env = bt_test_env_new();
    char *a, *b;

    cr_assert_eq(bt_test_load_plugin(env, BT_PLUGIN_DIR "/versioned_v1.so"), 0);
    cr_assert_eq(bt_test_start(env, "versioned", "both-ways", json_pack("{s:i}", "n", 7)),
                 0);
    cr_assert_eq(bt_test_run(env), 0, "%s", bt_test_error_text(env));
    cr_assert_eq(bt_test_signal(env, "both-ways", "go", NULL, NULL), 0);
    cr_assert_eq(bt_test_run(env), 0, "%s", bt_test_error_text(env));
    for (size_t i = 0; i < bt_test_history_len(env, "both-ways"); i++)
        json_array_append_new(kit,
                              json_loads(bt_test_history(env, "both-ways", i), 0, NULL));
    strip_times(real);
    strip_times(kit);
    a = json_dumps(real, JSON_SORT_KEYS);
    b = json_dumps(kit, JSON_SORT_KEYS);
    cr_assert_str_eq(b, a, "kit:\n%s\nstack:\n%s", b, a);
    free(a);
    free(b);
    json_decref(real);
    json_decref(kit);
    bt_test_env_free(env);
}

static int replay_on(const char *plugin, const char *lines, char *why, size_t n)
{
    bt_test_env *env = bt_test_env_new();
    int ret;

    cr_assert_eq(bt_test_load_plugin(env, plugin), 0, "%s", bt_test_error_text(env));
    ret = bt_test_replay_history(env, lines, why, n);
    bt_test_env_free(env);
    return ret;
}

Test(testkit_stack, a_history_recorded_on_the_stack_replays_in_the_kit)
{
    json_t *real = run_on_stack("recorded"), *rec;
    char why[512] = "", *lines = NULL;
    size_t size = 0, i;
    FILE *f = open_memstream(&lines, &size);

    cr_assert(f);
    json_array_foreach(real, i, rec)
    {
        char *text = json_dumps(rec, JSON_COMPACT);
        fprintf(f, "%s\n", text);
        free(text);
    }
    fclose(f);
    cr_assert_eq(replay_on(BT_PLUGIN_DIR "/versioned_v1.so", lines, why, sizeof(why)), 0,
                 "%s", why);
    cr_assert_eq(replay_on(BT_PLUGIN_DIR "/versioned_v3.so", lines, why, sizeof(why)), 1,
                 "the reordered deploy replays it");
    cr_assert(strstr(why, "seq 0"), "the first step is where it diverges: %s", why);
    free(lines);
    json_decref(real);
}
