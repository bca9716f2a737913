/* Pause, resume, reset and search attributes on the replay engine, in the
 * test kit's virtual time: every kind of timer a step holds (a sleep, a
 * signal's timeout, an activity's retry backoff) is stopped by a pause and
 * gets exactly the rest of its time on resume; a reset keeps the steps before
 * its point and does the rest again; attributes merge and survive replays.
 * Each case also with the instance rebuilt from its stored form after every
 * event (a crash), where it says so. */
#include <criterion/criterion.h>
#include <string.h>

#include "baton.h"
#include "baton_test.h"

static bt_test_env *env;

static bt_poll sleepy(bt_wf *wf, const json_t *input)
{
    (void)input;
    BT_SLEEP(wf, 10000);
    return bt_complete(wf, NULL);
}

static bt_poll waits(bt_wf *wf, const json_t *input)
{
    const json_t *v;

    (void)input;
    BT_WAIT_SIGNAL(wf, &v, "go", 10000);
    return bt_complete(wf, json_pack("{s:O?}", "got", v));
}

static int flaky(bt_act *act, const json_t *input, json_t **result)
{
    (void)act;
    (void)input;
    *result = json_string("ok");
    return 0;
}

static bt_poll retries(bt_wf *wf, const json_t *input)
{
    static const struct bt_step_opts opts = {
        .retry = {.max_attempts = 3, .initial_ms = 10000, .coefficient = 1.0}};

    (void)input;
    BT_RUN(wf, NULL, "flaky", NULL, &opts);
    return bt_complete(wf, NULL);
}

/* fails its first call, for good: a fault fixed before a reset */
static int second_calls;
static int second(bt_act *act, const json_t *input, json_t **result)
{
    (void)input;
    if (second_calls++ == 0)
        return bt_act_fail(act, "Boom", false, "the first call fails");
    *result = json_string("ok");
    return 0;
}

/* "first" then "second" (at most one attempt); attributes before and after */
static bt_poll two_steps(bt_wf *wf, const json_t *input)
{
    static const struct bt_step_opts once = {.retry = {.max_attempts = 1}};

    (void)input;
    bt_upsert_attributes(wf, json_pack("{s:s, s:s}", "brand", "acme", "stage", "first"));
    BT_RUN(wf, NULL, "first", NULL, NULL);
    BT_RUN(wf, NULL, "second", NULL, &once);
    bt_upsert_attributes(wf, json_pack("{s:n, s:i}", "stage", "tier", 2));
    return bt_complete(wf, NULL);
}

static bt_poll bad_attributes(bt_wf *wf, const json_t *input)
{
    (void)input;
    bt_upsert_attributes(wf, json_pack("{s:[i]}", "list", 1));
    return bt_complete(wf, NULL);
}

static int register_all(bt_registry *r)
{
    return bt_register_workflow(r, "sleepy", sleepy) ||
           bt_register_workflow(r, "waits", waits) ||
           bt_register_workflow(r, "retries", retries) ||
           bt_register_workflow(r, "two_steps", two_steps) ||
           bt_register_workflow(r, "bad_attributes", bad_attributes) ||
           bt_register_activity(r, "flaky", flaky, NULL) ||
           bt_register_activity(r, "first", flaky, NULL) ||
           bt_register_activity(r, "second", second, NULL);
}

static void setup(void)
{
    cr_assert(env = bt_test_env_new());
    cr_assert_eq(bt_test_register(env, register_all), 0, "%s", bt_test_error_text(env));
}

static void teardown(void)
{
    bt_test_env_free(env);
}

TestSuite(controls, .init = setup, .fini = teardown);

/* The virtual time of the first history record of id whose ev is ev; -1. */
static int64_t when(const char *id, const char *ev, int nth)
{
    for (size_t i = 0; i < bt_test_history_len(env, id); i++) {
        json_t *rec = json_loads(bt_test_history(env, id, i), 0, NULL);
        const char *name = json_string_value(json_object_get(rec, "ev"));
        int64_t ts = json_integer_value(json_object_get(rec, "ts"));
        bool hit = name && !strcmp(name, ev) && nth-- == 0;
        json_decref(rec);
        if (hit)
            return ts;
    }
    return -1;
}

static void run(void)
{
    cr_assert_eq(bt_test_run(env), 0, "%s", bt_test_error_text(env));
    cr_assert_eq(bt_test_dead_letters(env), 0);
}

/* paused 3 s into a 10 s sleep for an hour: it fires 7 s after the resume */
static void a_sleep_gets_the_rest_of_its_time(bool crash)
{
    bt_test_crash_after_every_event(env, crash);
    cr_assert_eq(bt_test_start(env, "sleepy", "s", NULL), 0);
    int64_t t0 = bt_test_now(env);
    cr_assert_eq(bt_test_pause(env, "s", "3s"), 0);
    cr_assert_eq(bt_test_resume(env, "s", "1h"), 0);
    run();
    cr_assert_str_eq(bt_test_status(env, "s"), "completed");
    cr_assert_eq(when("s", "paused", 0), t0 + 3000);
    cr_assert_eq(when("s", "resumed", 0), t0 + 3600000);
    cr_assert_eq(when("s", "timer_fired", 0), t0 + 3600000 + 7000);
}

Test(controls, a_paused_sleep_gets_the_rest_of_its_time)
{
    a_sleep_gets_the_rest_of_its_time(false);
}

Test(controls, a_paused_sleep_gets_the_rest_of_its_time_across_crashes)
{
    a_sleep_gets_the_rest_of_its_time(true);
}

Test(controls, a_signal_while_paused_is_kept_and_its_timeout_does_not_fire)
{
    cr_assert_eq(bt_test_start(env, "waits", "w", NULL), 0);
    cr_assert_eq(bt_test_pause(env, "w", "1s"), 0);
    cr_assert_eq(bt_test_signal(env, "w", "go", json_string("yes"), "30s"), 0);
    cr_assert_eq(bt_test_resume(env, "w", "1h"), 0);
    run();
    cr_assert_str_eq(bt_test_status(env, "w"), "completed");
    cr_assert_str_eq(json_string_value(json_object_get(bt_test_result(env, "w"), "got")),
                     "yes");
    cr_assert_eq(when("w", "timer_fired", 0), -1, "the signal's timeout fired");
}

Test(controls, a_retry_backoff_is_stopped_by_a_pause)
{
    int64_t t0 = bt_test_now(env);

    cr_assert_eq(bt_test_fail_activity(env, "flaky", 1, "Flaky"), 0);
    cr_assert_eq(bt_test_start(env, "retries", "r", NULL), 0);
    cr_assert_eq(bt_test_pause(env, "r", "4s"), 0);
    cr_assert_eq(bt_test_resume(env, "r", "2h"), 0);
    run();
    cr_assert_str_eq(bt_test_status(env, "r"), "completed");
    /* the 10 s backoff from the failure at t0: 6 s were left at the pause */
    cr_assert_eq(when("r", "activity_scheduled", 1), t0 + 2 * 3600000 + 6000);
}

Test(controls, a_finished_instance_is_neither_paused_nor_resumed)
{
    cr_assert_eq(bt_test_start(env, "sleepy", "f", NULL), 0);
    cr_assert_eq(bt_test_pause(env, "f", "1h"), 0);
    cr_assert_eq(bt_test_run(env), 0, "%s", bt_test_error_text(env));
    cr_assert_str_eq(bt_test_status(env, "f"), "completed");
    cr_assert_eq(bt_test_dead_letters(env), 1, "a pause of a finished instance");
}

static void a_reset_does_the_failed_step_again(bool crash)
{
    bt_test_crash_after_every_event(env, crash);
    second_calls = 0;
    cr_assert_eq(bt_test_start(env, "two_steps", "t", NULL), 0);
    cr_assert_eq(bt_test_reset(env, "t", -1, "1m"), 0);
    run();
    cr_assert_str_eq(bt_test_status(env, "t"), "completed");
    cr_assert_eq(bt_test_calls(env, "first"), 1, "the step before the point ran again");
    cr_assert_eq(bt_test_calls(env, "second"), 2);
    cr_assert_neq(when("t", "reset", 0), -1);
    const json_t *attrs = bt_test_attributes(env, "t");
    cr_assert_str_eq(json_string_value(json_object_get(attrs, "brand")), "acme");
    cr_assert_null(json_object_get(attrs, "stage"), "null removes an attribute");
    cr_assert_eq(json_integer_value(json_object_get(attrs, "tier")), 2);
}

Test(controls, a_reset_to_the_last_failure_does_that_step_again)
{
    a_reset_does_the_failed_step_again(false);
}

Test(controls, a_reset_to_the_last_failure_does_that_step_again_across_crashes)
{
    a_reset_does_the_failed_step_again(true);
}

Test(controls, a_reset_to_a_step_that_does_not_exist_is_a_dead_letter)
{
    cr_assert_eq(bt_test_start(env, "sleepy", "n", NULL), 0);
    cr_assert_eq(bt_test_reset(env, "n", 42, "1s"), 0);
    cr_assert_eq(bt_test_run(env), 0, "%s", bt_test_error_text(env));
    cr_assert_eq(bt_test_dead_letters(env), 1);
    cr_assert_str_eq(bt_test_status(env, "n"), "completed");
}

Test(controls, attributes_that_are_not_scalars_fail_the_instance)
{
    cr_assert_eq(bt_test_start(env, "bad_attributes", "b", NULL), 0);
    cr_assert_eq(bt_test_run(env), 0, "%s", bt_test_error_text(env));
    cr_assert_str_eq(bt_test_status(env, "b"), "failed");
    cr_assert_str_eq(
        json_string_value(json_object_get(bt_test_failure(env, "b"), "type")),
        "InvalidSearchAttributes");
}
