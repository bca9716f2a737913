/* Workflows for the time tests: retries with backoff, compensation, durable
 * sleeps, signal timeouts and activity timeouts. Durations come from the
 * input so the tests run in milliseconds. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "baton.h"

static void nap_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* fails its first input.fail_times attempts, retryably */
static int flaky(bt_act *act, const json_t *input, json_t **result)
{
    int attempt = bt_act_attempt(act);

    if (attempt <= json_integer_value(json_object_get(input, "fail_times")))
        return bt_act_fail(act, "Flaky", true, "attempt %d failed on purpose", attempt);
    *result = json_pack("{s:i}", "attempt", attempt);
    return 0;
}

static int compensate(bt_act *act, const json_t *input, json_t **result)
{
    (void)act;
    *result =
        json_pack("{s:b, s:O}", "compensated", 1, "for", json_object_get(input, "error"));
    return 0;
}

/* sleeps input.first_ms on attempt 1 (long enough to be killed in), then is
 * quick; touches input.marker when it starts so a test knows it is running */
static int slow(bt_act *act, const json_t *input, json_t **result)
{
    const char *marker = json_string_value(json_object_get(input, "marker"));
    FILE *f;

    if (marker && (f = fopen(marker, "a"))) {
        fprintf(f, "attempt %d\n", bt_act_attempt(act));
        fclose(f);
    }
    if (bt_act_attempt(act) == 1)
        nap_ms(json_integer_value(json_object_get(input, "first_ms")));
    *result = json_pack("{s:i}", "attempt", bt_act_attempt(act));
    return 0;
}

/* fails, not retryably, until the file input.gate exists: a fault fixed
 * outside the workflow (for `baton reset`) */
static int gate(bt_act *act, const json_t *input, json_t **result)
{
    const char *path = json_string_value(json_object_get(input, "gate"));
    FILE *f = path ? fopen(path, "r") : NULL;

    if (!f)
        return bt_act_fail(act, "GateClosed", false, "no file %s yet", path ? path : "");
    fclose(f);
    *result = json_pack("{s:b}", "passed", 1);
    return 0;
}

static bt_poll retry_or_compensate(bt_wf *wf, const json_t *input)
{
    struct bt_step_opts opts = {.retry = {.max_attempts = (int)json_integer_value(
                                              json_object_get(input, "max_attempts")),
                                          .initial_ms = 100,
                                          .coefficient = 2.0}};
    const json_t *result, *error;
    bt_poll p = bt_await(wf, bt_start(wf, "flaky", json_deep_copy(input), &opts), &result,
                         &error);

    if (p == BT_PENDING)
        return BT_PENDING;
    if (p == BT_READY)
        return bt_complete(wf, json_pack("{s:s, s:O}", "branch", "ok", "result", result));
    BT_RUN(wf, &result, "compensate", json_pack("{s:O}", "error", error), NULL);
    return bt_complete(
        wf, json_pack("{s:s, s:O}", "branch", "compensated", "result", result));
}

/* "Flaky" is declared non-retryable here: the first failure is final */
static bt_poll no_retry(bt_wf *wf, const json_t *input)
{
    static const char *const fatal[] = {"Flaky", NULL};
    const struct bt_step_opts opts = {
        .retry = {.max_attempts = 5, .initial_ms = 10, .non_retryable = fatal}};
    const json_t *error;
    bt_poll p =
        bt_await(wf, bt_start(wf, "flaky", json_deep_copy(input), &opts), NULL, &error);

    if (p == BT_PENDING)
        return BT_PENDING;
    return bt_complete(wf, json_pack("{s:s, s:O?}", "branch",
                                     p == BT_READY ? "ok" : "failed", "error", error));
}

static bt_poll sleeper(bt_wf *wf, const json_t *input)
{
    BT_SLEEP(wf, json_integer_value(json_object_get(input, "ms")));
    return bt_complete(wf, json_pack("{s:b}", "slept", 1));
}

static bt_poll wait_review(bt_wf *wf, const json_t *input)
{
    const json_t *review;

    BT_WAIT_SIGNAL(wf, &review, "review",
                   json_integer_value(json_object_get(input, "ms")));
    if (review)
        return bt_complete(wf, json_pack("{s:s, s:O}", "branch", "A", "review", review));
    return bt_complete(wf, json_pack("{s:s}", "branch", "B"));
}

static bt_poll slow_once(bt_wf *wf, const json_t *input)
{
    static const struct bt_step_opts opts = {.start_to_close_ms = 1500,
                                             .retry = {.initial_ms = 10}};
    const json_t *result;

    BT_RUN(wf, &result, "slow", json_deep_copy(input), &opts);
    return bt_complete(wf, json_deep_copy(result));
}

/* "slow" (quick here: first_ms 0; it writes to input.marker each time it
 * runs), then "gate": the instance fails while the gate is closed */
static bt_poll gated(bt_wf *wf, const json_t *input)
{
    static const struct bt_step_opts once = {.retry = {.max_attempts = 1}};
    const json_t *first, *second;

    BT_RUN(wf, &first, "slow", json_deep_copy(input), NULL);
    BT_RUN(wf, &second, "gate", json_deep_copy(input), &once);
    return bt_complete(wf, json_pack("{s:O, s:O}", "first", first, "second", second));
}

int baton_register(bt_registry *r);
int baton_register(bt_registry *r)
{
    if (bt_register_workflow(r, "retry_or_compensate", retry_or_compensate) ||
        bt_register_workflow(r, "sleeper", sleeper) ||
        bt_register_workflow(r, "no_retry", no_retry) ||
        bt_register_workflow(r, "wait_review", wait_review) ||
        bt_register_workflow(r, "slow_once", slow_once) ||
        bt_register_workflow(r, "gated", gated) ||
        bt_register_activity(r, "gate", gate, NULL) ||
        bt_register_activity(r, "flaky", flaky, NULL) ||
        bt_register_activity(r, "compensate", compensate, NULL) ||
        bt_register_activity(r, "slow", slow, NULL))
        return -1;
    return 0;
}
