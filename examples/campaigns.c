/* Team B's plugin: the campaign registration of the README, everything on
 * the task queue "campaigns". Brand registration (examples/registration.c,
 * team A) starts it as a child workflow and awaits its outcome.
 *
 * campaign_registration: create the campaign, submit it to three carriers in
 * parallel behind one shared rate limit ("carriers", 5/s), then wait for the
 * carriers' review, sent as the signal "review" with a payload
 * {"decision": "approved"|"rejected", "reason": ...}. A carrier that stays
 * silent for review_timeout_ms (24 h unless the input says otherwise; the demo
 * and the tests shorten it) has lost the webhook: the campaign is sent to the
 * carriers again and the wait starts over, at most MAX_RESENDS (3) times.
 *
 * The carriers are fake: they answer after a few milliseconds. Load it with
 * `baton-worker --queues campaigns --plugin campaigns.so`. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "baton.h"

#define QUEUE       "campaigns"
#define MAX_RESENDS 3

static const char *const carriers[] = {"att", "t-mobile", "verizon"};
#define N_CARRIERS (sizeof(carriers) / sizeof(carriers[0]))

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A short stable reference for a step: the same on every attempt, so a retry
 * after a crash finds the record the first attempt made downstream. */
static void reference(const bt_act *act, const char *tag, char *buf, size_t n)
{
    uint32_t h = 2166136261u;

    for (const char *p = bt_act_idempotency_key(act); *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    snprintf(buf, n, "%s-%06x", tag, (unsigned)(h & 0xffffff));
}

/* ---- activities ---- */

static int create_campaign(bt_act *act, const json_t *input, json_t **result)
{
    const char *brand_id = json_string_value(json_object_get(input, "brand_id"));
    const char *use_case = json_string_value(json_object_get(input, "use_case"));
    char id[32];

    if (!brand_id)
        return bt_act_fail(act, "InvalidInput", false,
                           "input needs a \"brand_id\" string");
    reference(act, "CMP", id, sizeof(id));
    *result = json_pack("{s:s, s:s, s:s}", "campaign_id", id, "brand_id", brand_id,
                        "use_case", use_case ? use_case : "marketing");
    return 0;
}

static int submit_to_carrier(bt_act *act, const json_t *input, json_t **result)
{
    const char *carrier = json_string_value(json_object_get(input, "carrier"));
    char ref[48];

    if (!carrier)
        return bt_act_fail(act, "InvalidInput", false,
                           "input needs a \"carrier\" string");
    nap_ms(2 + bt_act_seq(act) % 8);
    reference(act, carrier, ref, sizeof(ref));
    *result = json_pack("{s:s, s:s, s:s}", "carrier", carrier, "status", "submitted",
                        "reference", ref);
    return 0;
}

/* The lost-webhook case: ask every carrier to send its verdict again. */
static int resend_to_carriers(bt_act *act, const json_t *input, json_t **result)
{
    json_t *to = json_object_get(input, "carriers");

    if (!json_is_array(to))
        return bt_act_fail(act, "InvalidInput", false,
                           "input needs a \"carriers\" array");
    nap_ms(2);
    *result =
        json_pack("{s:O, s:O}", "resent", to, "round", json_object_get(input, "round"));
    return 0;
}

/* ---- the workflow ---- */

static json_t *carrier_list(void)
{
    json_t *list = json_array();

    for (size_t i = 0; i < N_CARRIERS; i++)
        json_array_append_new(list, json_string(carriers[i]));
    return list;
}

static bt_poll campaign_registration(bt_wf *wf, const json_t *input)
{
    const json_t *campaign, *review = NULL;
    /* read from the input, never from the environment: replay must see the
     * same value; absent (or not positive) means the production 24 h */
    json_int_t t = json_integer_value(json_object_get(input, "review_timeout_ms"));
    int64_t review_timeout = t > 0 ? (int64_t)t : BT_HOURS(24);
    const char *decision, *reason;
    bt_future *sub[N_CARRIERS];
    int resends = 0;

    BT_RUN(wf, &campaign, "create_campaign", json_deep_copy(input), NULL);
    for (size_t i = 0; i < N_CARRIERS; i++) /* fan out; the rate limit paces them */
        sub[i] = bt_start(wf, "submit_to_carrier",
                          json_pack("{s:s, s:O}", "carrier", carriers[i], "campaign_id",
                                    json_object_get(campaign, "campaign_id")),
                          NULL);
    BT_AWAIT_ALL(wf, sub, N_CARRIERS);

    for (;;) {
        BT_WAIT_SIGNAL(wf, &review, "review", review_timeout);
        if (review) /* NULL: the timeout came first */
            break;
        if (resends == MAX_RESENDS)
            return bt_fail(wf, "NoReview", "no review after %d resends to the carriers",
                           resends);
        resends++;
        BT_RUN(wf, NULL, "resend_to_carriers",
               json_pack("{s:O, s:o, s:i}", "campaign_id",
                         json_object_get(campaign, "campaign_id"), "carriers",
                         carrier_list(), "round", resends),
               NULL);
    }

    decision = json_string_value(json_object_get(review, "decision"));
    reason = json_string_value(json_object_get(review, "reason"));
    if (!decision || (strcmp(decision, "approved") && strcmp(decision, "rejected")))
        return bt_fail(wf, "InvalidReview",
                       "review payload needs \"decision\": \"approved\" or \"rejected\"");
    return bt_complete(wf, json_pack("{s:O, s:s, s:s*, s:i}", "campaign_id",
                                     json_object_get(campaign, "campaign_id"), "status",
                                     decision, "reason", reason, "resends", resends));
}

int baton_register(bt_registry *r);
int baton_register(bt_registry *r)
{
    static const struct bt_step_opts local = {.queue = QUEUE};
    /* one token bucket for every submission of every campaign on every worker:
     * the carriers accept a few requests per second from us, all together */
    static const struct bt_step_opts carrier_api = {
        .queue = QUEUE,
        .rate_key = "carriers",
        .rate = 5,
        .burst = 2,
        .retry = {.max_attempts = 5, .initial_ms = 100, .coefficient = 2.0}};

    if (bt_register_workflow(r, "campaign_registration", campaign_registration) ||
        bt_register_activity(r, "create_campaign", create_campaign, &local) ||
        bt_register_activity(r, "submit_to_carrier", submit_to_carrier, &carrier_api) ||
        bt_register_activity(r, "resend_to_carriers", resend_to_carriers, &carrier_api))
        return -1;
    return 0;
}
