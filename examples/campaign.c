/* The campaign-registration example of DESIGN.md §1, as a plugin:
 * create the campaign, submit it to three carriers in parallel (fan-out,
 * fan-in), record the outcome. The carriers are fake: they answer after a
 * few milliseconds, and "carrier-c" fails now and then, retryably, the way
 * a real carrier API does. Load it with `baton-worker --plugin campaign.so`. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "baton.h"

static const char *const carriers[] = {"carrier-a", "carrier-b", "carrier-c"};

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* activities: plain functions wrapping "existing code" */

static int create_campaign(bt_act *act, const json_t *input, json_t **result)
{
    const char *brand = json_string_value(json_object_get(input, "brand"));

    if (!brand)
        return bt_act_fail(act, "InvalidInput", false, "input needs a \"brand\" string");
    *result = json_pack("{s:s, s:s, s:s}", "campaign_id", bt_act_idempotency_key(act),
                        "brand", brand, "use_case",
                        json_string_value(json_object_get(input, "use_case"))
                            ? json_string_value(json_object_get(input, "use_case"))
                            : "marketing");
    return 0;
}

static int submit_to_carrier(bt_act *act, const json_t *input, json_t **result)
{
    const char *carrier = json_string_value(json_object_get(input, "carrier"));
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)act;

    nap_ms(2 + rand_r(&seed) % 10);
    if (carrier && !strcmp(carrier, "carrier-c") && bt_act_attempt(act) == 1 &&
        rand_r(&seed) % 4 == 0)
        return bt_act_fail(act, "CarrierUnavailable", true, "carrier-c answered 503");
    *result = json_pack("{s:s, s:s, s:s}", "carrier", carrier ? carrier : "?", "status",
                        "submitted", "reference", bt_act_idempotency_key(act));
    return 0;
}

static int record_outcome(bt_act *act, const json_t *input, json_t **result)
{
    (void)act;
    *result = json_pack("{s:O, s:b}", "campaign", json_object_get(input, "campaign"),
                        "recorded", 1);
    return 0;
}

/* the workflow: plain sequential code, replayed */

static bt_poll campaign_registration(bt_wf *wf, const json_t *input)
{
    const json_t *campaign, *outcome;
    bt_future *sub[3];
    json_t *submissions;

    BT_RUN(wf, &campaign, "create_campaign", json_incref((json_t *)(uintptr_t)input),
           NULL);
    for (int i = 0; i < 3; i++)
        sub[i] = bt_start(
            wf, "submit_to_carrier",
            json_pack("{s:s, s:O}", "carrier", carriers[i], "campaign", campaign), NULL);
    BT_AWAIT_ALL(wf, sub, 3);
    submissions = json_array();
    for (int i = 0; i < 3; i++) {
        const json_t *r;
        bt_await(wf, sub[i], &r, NULL);
        json_array_append(submissions, (json_t *)(uintptr_t)r);
    }
    BT_RUN(wf, &outcome, "record_outcome",
           json_pack("{s:O, s:o}", "campaign", campaign, "submissions", submissions),
           NULL);
    return bt_complete(wf, json_pack("{s:O, s:s}", "campaign", campaign, "status",
                                     "submitted to 3 carriers"));
}

int baton_register(bt_registry *r);
int baton_register(bt_registry *r)
{
    static const struct bt_step_opts carrier_opts = {
        .retry = {.max_attempts = 5, .initial_ms = 1, .coefficient = 2.0}};

    if (bt_register_workflow(r, "campaign_registration", campaign_registration) ||
        bt_register_activity(r, "create_campaign", create_campaign, NULL) ||
        bt_register_activity(r, "submit_to_carrier", submit_to_carrier, &carrier_opts) ||
        bt_register_activity(r, "record_outcome", record_outcome, NULL))
        return -1;
    return 0;
}
