/* The test kit (baton_test.h) on the registration example (examples/
 * registration.c and campaigns.c): the tutorial of docs/testing.md, each case
 * in virtual time, no Kafka, no Redis. */
#include <criterion/criterion.h>
#include <string.h>

#include "baton_test.h"

static bt_test_env *env;

static void setup(void)
{
    cr_assert(env = bt_test_env_new());
    cr_assert_eq(bt_test_load_plugin(env, BT_PLUGIN_DIR "/registration.so"), 0, "%s",
                 bt_test_error_text(env));
    cr_assert_eq(bt_test_load_plugin(env, BT_PLUGIN_DIR "/campaigns.so"), 0, "%s",
                 bt_test_error_text(env));
}

static void teardown(void)
{
    bt_test_env_free(env);
}

TestSuite(testkit, .init = setup, .fini = teardown);

static void start_acme(void)
{
    cr_assert_eq(bt_test_start(env, "brand_registration", "acme",
                               json_pack("{s:s, s:s, s:i}", "brand", "acme", "use_case",
                                         "2fa", "numbers", 2)),
                 0, "%s", bt_test_error_text(env));
}

/* The history of an instance run here, as JSON lines. */
static char *history_lines(bt_test_env *e, const char *id)
{
    size_t size = 0;
    char *text = NULL;
    FILE *f = open_memstream(&text, &size);

    cr_assert(f);
    for (size_t i = 0; i < bt_test_history_len(e, id); i++)
        fprintf(f, "%s\n", bt_test_history(e, id, i));
    fclose(f);
    return text;
}

static const char *result_text(const char *id, const char *key)
{
    return json_string_value(json_object_get(bt_test_result(env, id), key));
}

static json_t *review(const char *decision)
{
    return json_pack("{s:s, s:s}", "decision", decision, "reason", "looks fine");
}

/* The carriers lose the webhook: nothing for 24 h, so the campaign is sent
 * to them again; their review comes 30 h after the start. */
Test(testkit, the_lost_webhook_is_resent_after_the_24_hour_review_timeout)
{
    start_acme();
    cr_assert_eq(
        bt_test_signal(env, "acme/campaign", "review", review("approved"), "30h"), 0);
    cr_assert_eq(bt_test_run(env), 0, "%s", bt_test_error_text(env));

    cr_assert_str_eq(bt_test_status(env, "acme"), "completed");
    cr_assert_str_eq(result_text("acme", "status"), "approved");
    cr_assert_eq(bt_test_calls(env, "resend_to_carriers"), 1, "one resend, at 24 h");
    cr_assert_geq(bt_test_call(env, "resend_to_carriers", 0)->at_ms,
                  bt_test_call(env, "create_campaign", 0)->at_ms + 24 * 3600 * 1000);
    cr_assert_eq(bt_test_calls(env, "register_numbers"), 1);
    cr_assert_eq(bt_test_dead_letters(env), 0);
}

/* Silence for good: three resends, then the campaign fails, and the brand
 * registration with it. */
Test(testkit, no_review_at_all_fails_after_three_resends)
{
    start_acme();
    cr_assert_eq(bt_test_run(env), 0, "%s", bt_test_error_text(env));
    cr_assert_str_eq(bt_test_status(env, "acme/campaign"), "failed");
    cr_assert_str_eq(
        json_string_value(json_object_get(bt_test_failure(env, "acme/campaign"), "type")),
        "NoReview");
    cr_assert_str_eq(bt_test_status(env, "acme"), "failed");
    cr_assert_eq(bt_test_calls(env, "resend_to_carriers"), 3);
    cr_assert_geq(bt_test_now(env), bt_test_call(env, "create_campaign", 0)->at_ms +
                                        INT64_C(4) * 24 * 3600 * 1000);
}

/* Every carrier fails twice, then answers: each submission runs three
 * attempts with the same idempotency key. */
Test(testkit, a_carrier_failing_twice_is_retried)
{
    const struct bt_test_call *first, *third;

    cr_assert_eq(bt_test_fail_activity(env, "submit_to_carrier", 2, "CarrierDown"), 0);
    start_acme();
    cr_assert_eq(bt_test_signal(env, "acme/campaign", "review", review("approved"), "1h"),
                 0);
    cr_assert_eq(bt_test_run(env), 0, "%s", bt_test_error_text(env));

    cr_assert_str_eq(bt_test_status(env, "acme"), "completed");
    cr_assert_eq(bt_test_calls(env, "submit_to_carrier"), 9, "3 carriers x 3 attempts");
    first = bt_test_call(env, "submit_to_carrier", 0);
    for (size_t i = 1; i < 9; i++) {
        third = bt_test_call(env, "submit_to_carrier", i);
        if (third->seq == first->seq && third->attempt == 3)
            break;
    }
    cr_assert_eq(third->attempt, 3);
    cr_assert_str_eq(third->idempotency_key, first->idempotency_key,
                     "a retry keeps its idempotency key");
    cr_assert_gt(third->at_ms, first->at_ms, "the retries waited their backoff");
}

/* A person decides: rejected two hours in, completed with the reason. */
Test(testkit, a_manual_rejection_completes_with_the_reason)
{
    start_acme();
    cr_assert_eq(bt_test_advance(env, "2h"), 0, "%s", bt_test_error_text(env));
    cr_assert_str_eq(bt_test_status(env, "acme"), "running");
    cr_assert_eq(bt_test_signal(env, "acme/campaign", "review", review("rejected"), NULL),
                 0);
    cr_assert_eq(bt_test_run(env), 0, "%s", bt_test_error_text(env));
    cr_assert_str_eq(bt_test_status(env, "acme"), "completed");
    cr_assert_str_eq(result_text("acme", "status"), "rejected");
    cr_assert_str_eq(result_text("acme", "reason"), "looks fine");
    cr_assert_eq(bt_test_calls(env, "register_numbers"), 0);
}

/* A crash after every event: each instance is loaded again from its journal
 * before the next one, and no attempt runs twice. */
Test(testkit, a_crash_after_every_event_changes_nothing)
{
    size_t n_calls = 0;
    const char *names[] = {"register_brand", "create_campaign", "submit_to_carrier",
                           "resend_to_carriers", "register_numbers"};

    bt_test_crash_after_every_event(env, true);
    cr_assert_eq(bt_test_fail_activity(env, "submit_to_carrier", 1, "CarrierDown"), 0);
    start_acme();
    cr_assert_eq(
        bt_test_signal(env, "acme/campaign", "review", review("approved"), "25h"), 0);
    cr_assert_eq(bt_test_run(env), 0, "%s", bt_test_error_text(env));
    cr_assert_str_eq(bt_test_status(env, "acme"), "completed");
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
        for (size_t i = 0; i < bt_test_calls(env, names[k]); i++) {
            const struct bt_test_call *a = bt_test_call(env, names[k], i);
            n_calls++;
            for (size_t j = i + 1; j < bt_test_calls(env, names[k]); j++) {
                const struct bt_test_call *b = bt_test_call(env, names[k], j);
                cr_assert(strcmp(a->id, b->id) || a->seq != b->seq ||
                              a->attempt != b->attempt,
                          "%s seq %lld attempt %d ran twice", names[k], (long long)a->seq,
                          a->attempt);
            }
        }
    cr_assert_eq(n_calls, 1 + 1 + 6 + 1 + 1,
                 "brand, campaign, 3x2 submissions, a "
                 "resend, the numbers");
}

/* A scripted attempt that never answers: its start-to-close timeout fires
 * (virtual time) and the next attempt completes with the scripted result. */
Test(testkit, a_scripted_timeout_is_retried_after_the_timeout)
{
    const struct bt_test_call *a, *b;

    cr_assert_eq(bt_test_script_activity(
                     env, "register_brand",
                     "[{\"timeout\": true}, {\"result\": {\"brand_id\": \"BRD-1\", "
                     "\"brand\": \"acme\"}}]"),
                 0);
    start_acme();
    cr_assert_eq(bt_test_signal(env, "acme/campaign", "review", review("approved"), "1h"),
                 0);
    cr_assert_eq(bt_test_run(env), 0, "%s", bt_test_error_text(env));
    cr_assert_str_eq(bt_test_status(env, "acme"), "completed");
    cr_assert_str_eq(result_text("acme", "brand_id"), "BRD-1");
    cr_assert_eq(bt_test_calls(env, "register_brand"), 2);
    a = bt_test_call(env, "register_brand", 0);
    b = bt_test_call(env, "register_brand", 1);
    cr_assert_geq(b->at_ms - a->at_ms, 60000, "retried after the 60 s default timeout");
}

/* The history is the worker's: records for the start and the end. */
Test(testkit, the_history_holds_the_records_the_worker_writes)
{
    bool started = false, finished = false;

    start_acme();
    cr_assert_eq(bt_test_signal(env, "acme/campaign", "review", review("approved"), "1h"),
                 0);
    cr_assert_eq(bt_test_run(env), 0, "%s", bt_test_error_text(env));
    cr_assert_gt(bt_test_history_len(env, "acme"), 2);
    for (size_t i = 0; i < bt_test_history_len(env, "acme"); i++) {
        json_t *rec = json_loads(bt_test_history(env, "acme", i), 0, NULL);
        const char *ev = json_string_value(json_object_get(rec, "ev"));
        cr_assert(rec, "record %zu is JSON", i);
        started |= ev && !strcmp(ev, "started");
        finished |= ev && !strcmp(ev, "finished");
        json_decref(rec);
    }
    cr_assert(started && finished, "a started and a finished record");
}

Test(testkit, refuses_what_it_cannot_do_with_a_reason)
{
    cr_assert_eq(bt_test_start(env, "no_such_type", "x", NULL), -1);
    cr_assert(strstr(bt_test_error_text(env), "no_such_type"));
    cr_assert_eq(bt_test_advance(env, "soon"), -1);
    cr_assert(strstr(bt_test_error_text(env), "soon"));
    cr_assert_eq(bt_test_script_activity(env, "register_brand", "{}"), -1);
    cr_assert_eq(bt_test_load_plugin(env, "/nonexistent/plugin.so"), -1);
    cr_assert_str_eq(bt_test_status(env, "x") ? "?" : "none", "none");
}

static char *recorded_versioned_run(void)
{
    bt_test_env *v1 = bt_test_env_new();
    char *text;

    cr_assert_eq(bt_test_load_plugin(v1, BT_PLUGIN_DIR "/versioned_v1.so"), 0);
    cr_assert_eq(bt_test_start(v1, "versioned", "v", json_pack("{s:i}", "n", 1)), 0);
    cr_assert_eq(bt_test_signal(v1, "v", "go", NULL, "1h"), 0);
    cr_assert_eq(bt_test_run(v1), 0, "%s", bt_test_error_text(v1));
    cr_assert_str_eq(bt_test_status(v1, "v"), "completed");
    text = history_lines(v1, "v");
    bt_test_env_free(v1);
    return text;
}

static int replay_on(const char *plugin, const char *history, char *why, size_t n)
{
    bt_test_env *e = bt_test_env_new();
    int ret;

    cr_assert_eq(bt_test_load_plugin(e, plugin), 0, "%s", bt_test_error_text(e));
    ret = bt_test_replay_history(e, history, why, n);
    bt_test_env_free(e);
    return ret;
}

/* A recorded run replays on the code that made it; a deploy that reorders
 * steps or adds one before the end is caught, with the reason. */
Test(testkit, a_recorded_history_replays_on_its_code_and_not_on_an_incompatible_one)
{
    char why[512] = "", *v1 = recorded_versioned_run(), *acme;

    cr_assert_eq(replay_on(BT_PLUGIN_DIR "/versioned_v1.so", v1, why, sizeof(why)), 0,
                 "%s", why);
    cr_assert_eq(replay_on(BT_PLUGIN_DIR "/versioned_v3.so", v1, why, sizeof(why)), 1,
                 "steps reordered");
    cr_assert_gt(strlen(why), 0);
    why[0] = '\0';
    cr_assert_eq(replay_on(BT_PLUGIN_DIR "/versioned_v2.so", v1, why, sizeof(why)), 1,
                 "a step added before the end");
    cr_assert(strstr(why, "completed"), "%s", why);
    free(v1);

    start_acme();
    cr_assert_eq(bt_test_fail_activity(env, "register_brand", 1, "Flaky"), 0);
    cr_assert_eq(
        bt_test_signal(env, "acme/campaign", "review", review("approved"), "26h"), 0);
    cr_assert_eq(bt_test_run(env), 0, "%s", bt_test_error_text(env));
    acme = history_lines(env, "acme");
    cr_assert_eq(replay_on(BT_PLUGIN_DIR "/registration.so", acme, why, sizeof(why)), 0,
                 "%s", why);
    free(acme);
    cr_assert_eq(bt_test_replay_history(env, "not json", why, sizeof(why)), -1);
}

/* A review whose decision is neither approved nor rejected fails the
 * campaign, and the brand registration with it. */
Test(testkit, an_invalid_review_fails_the_campaign)
{
    start_acme();
    cr_assert_eq(bt_test_signal(env, "acme/campaign", "review", review("maybe"), "3h"),
                 0);
    cr_assert_eq(bt_test_run(env), 0, "%s", bt_test_error_text(env));
    cr_assert_str_eq(bt_test_status(env, "acme/campaign"), "failed");
    cr_assert_str_eq(bt_test_status(env, "acme"), "failed");
    cr_assert(strstr(
        json_string_value(json_object_get(bt_test_failure(env, "acme"), "message")),
        "acme/campaign"));
}

Test(testkit, a_registration_with_too_many_numbers_is_refused_at_once)
{
    cr_assert_eq(bt_test_start(env, "brand_registration", "big",
                               json_pack("{s:s, s:i}", "brand", "big", "numbers", 11)),
                 0);
    cr_assert_eq(bt_test_run(env), 0, "%s", bt_test_error_text(env));
    cr_assert_str_eq(bt_test_status(env, "big"), "failed");
    cr_assert_str_eq(
        json_string_value(json_object_get(bt_test_failure(env, "big"), "type")),
        "InvalidInput");
    cr_assert_eq(bt_test_calls(env, "register_brand"), 0);
}

/* Runs the 10-step workflow (each step after a "go" signal, one a minute)
 * and returns its history as JSON lines. */
static char *ten_steps(bool crash_every)
{
    bt_test_env *e = bt_test_env_new();
    char after[16], *text;

    cr_assert_eq(bt_test_load_plugin(e, BT_PLUGIN_DIR "/steps10.so"), 0);
    bt_test_crash_after_every_event(e, crash_every);
    cr_assert_eq(bt_test_start(e, "steps", "ten", NULL), 0);
    for (int i = 1; i <= 10; i++) {
        snprintf(after, sizeof(after), "%dm", i);
        cr_assert_eq(bt_test_signal(e, "ten", "go", NULL, after), 0);
    }
    cr_assert_eq(bt_test_run(e), 0, "%s", bt_test_error_text(e));
    cr_assert_str_eq(bt_test_status(e, "ten"), "completed");
    for (int i = 1; i <= 10; i++) {
        char name[8];
        snprintf(name, sizeof(name), "s%d", i);
        cr_assert_eq(bt_test_calls(e, name), 1, "%s ran %zu times", name,
                     bt_test_calls(e, name));
    }
    text = history_lines(e, "ten");
    bt_test_env_free(e);
    return text;
}

/* Dropping the memory after each of the 10-step workflow's events changes
 * neither a step's count nor a byte of the history. */
Test(testkit, a_crash_after_every_event_of_ten_steps_gives_the_same_run)
{
    char *plain = ten_steps(false), *crashed = ten_steps(true);

    cr_assert_str_eq(crashed, plain);
    free(plain);
    free(crashed);
}

/* A throttled attempt ("try again in 5 s") is not counted as a failure: the
 * next attempt comes after the wait. */
Test(testkit, a_throttled_attempt_is_tried_again_after_its_wait)
{
    const struct bt_test_call *a, *b;

    cr_assert_eq(
        bt_test_script_activity(env, "register_numbers",
                                "[{\"error\": \"Busy\", \"retry_after_ms\": 5000}, "
                                "{\"result\": {\"numbers\": [\"+1\"]}}]"),
        0);
    start_acme();
    cr_assert_eq(bt_test_signal(env, "acme/campaign", "review", review("approved"), "1h"),
                 0);
    cr_assert_eq(bt_test_run(env), 0, "%s", bt_test_error_text(env));
    cr_assert_str_eq(bt_test_status(env, "acme"), "completed");
    cr_assert_eq(bt_test_calls(env, "register_numbers"), 2);
    a = bt_test_call(env, "register_numbers", 0);
    b = bt_test_call(env, "register_numbers", 1);
    cr_assert_geq(b->at_ms - a->at_ms, 5000);
}

/* A terminate 3 hours in, while the campaign waits for its review: the
 * brand registration ends terminated, its campaign is closed with it, and
 * nothing runs afterwards. */
Test(testkit, a_terminate_at_a_given_time_ends_the_instance)
{
    start_acme();
    cr_assert_eq(bt_test_cancel(env, "acme", true, "3h"), 0);
    cr_assert_eq(bt_test_run(env), 0, "%s", bt_test_error_text(env));
    cr_assert_str_eq(bt_test_status(env, "acme"), "terminated");
    cr_assert_str_neq(bt_test_status(env, "acme/campaign"), "running");
    cr_assert_eq(bt_test_calls(env, "register_numbers"), 0);
    cr_assert_eq(bt_test_calls(env, "resend_to_carriers"), 0);
}

/* ---- registration functions given directly, no plugin ---- */

static int doubled(bt_act *act, const json_t *input, json_t **result)
{
    (void)act;
    *result = json_integer(2 * json_integer_value(json_object_get(input, "n")));
    return 0;
}

static bt_poll twice_then_sleep(bt_wf *wf, const json_t *input)
{
    const json_t *out = NULL;

    BT_RUN(wf, &out, "doubled", json_deep_copy(input), NULL);
    BT_SLEEP(wf, BT_HOURS(90 * 24));
    return bt_complete(wf, json_pack("{s:O, s:I}", "doubled", out, "at", bt_now(wf)));
}

static int register_inline(bt_registry *r)
{
    return bt_register_workflow(r, "inline", twice_then_sleep) ||
           bt_register_activity(r, "doubled", doubled, NULL);
}

/* A 90-day durable sleep passes in virtual time, and bt_now() is that time. */
Test(testkit, registers_functions_directly_and_sleeps_ninety_days_at_once)
{
    bt_test_env *e = bt_test_env_new();
    int64_t start = bt_test_now(e);

    cr_assert_eq(bt_test_register(e, register_inline), 0, "%s", bt_test_error_text(e));
    cr_assert_eq(bt_test_start(e, "inline", "i", json_pack("{s:i}", "n", 21)), 0);
    cr_assert_eq(bt_test_run(e), 0, "%s", bt_test_error_text(e));
    cr_assert_str_eq(bt_test_status(e, "i"), "completed");
    cr_assert_eq(json_integer_value(json_object_get(bt_test_result(e, "i"), "doubled")),
                 42);
    cr_assert_geq(json_integer_value(json_object_get(bt_test_result(e, "i"), "at")),
                  start + INT64_C(90) * 24 * 3600 * 1000);
    cr_assert_geq(bt_test_now(e), start + INT64_C(90) * 24 * 3600 * 1000);
    bt_test_env_free(e);
}

static bt_poll step_on_a_queue(bt_wf *wf, const json_t *input)
{
    const struct bt_step_opts on = {
        .queue = json_string_value(json_object_get(input, "queue"))};

    BT_RUN(wf, NULL, "doubled", json_pack("{s:i}", "n", 1), &on);
    return bt_complete(wf, NULL);
}

static int register_queued(bt_registry *r)
{
    return bt_register_workflow(r, "queued", step_on_a_queue) ||
           bt_register_activity(r, "doubled", doubled, NULL);
}

/* A queue name no Kafka topic can carry, given by the code: the command
 * could never be produced (on a real broker its retries would hold the
 * partition), so the decision fails the instance and says why. */
Test(testkit, a_step_on_a_queue_no_topic_can_name_fails_its_instance)
{
    bt_test_env *e = bt_test_env_new();
    const json_t *error;

    cr_assert_eq(bt_test_register(e, register_queued), 0, "%s", bt_test_error_text(e));
    cr_assert_eq(bt_test_start(e, "queued", "bad", json_pack("{s:s}", "queue", "a b")),
                 0);
    cr_assert_eq(
        bt_test_start(e, "queued", "good", json_pack("{s:s}", "queue", "q-1.x_y")), 0);
    cr_assert_eq(bt_test_run(e), 0, "%s", bt_test_error_text(e));
    cr_expect_str_eq(bt_test_status(e, "good"), "completed");
    cr_assert_str_eq(bt_test_status(e, "bad"), "failed");
    error = bt_test_failure(e, "bad");
    cr_assert(error);
    cr_expect_str_eq(json_string_value(json_object_get(error, "type")), "InvalidCommand");
    cr_expect(strstr(json_string_value(json_object_get(error, "message")), "tasks.a b"),
              "%s", json_string_value(json_object_get(error, "message")));
    bt_test_env_free(e);
}
