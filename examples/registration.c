/* Team A's plugin: brand registration, on the task queue "default".
 *
 * brand_registration: register the brand, then hand the campaign to team B's
 * workflow campaign_registration (examples/campaigns.c, task queue
 * "campaigns", another plugin loaded by another worker) as a child workflow,
 * and await its outcome. Approved: register the phone numbers and complete
 * with a summary. Rejected: complete with the carriers' reason. A campaign
 * that failed (no review at all, say) fails the brand registration.
 *
 * The child's id is "<brand registration id>/campaign": fixed by this code,
 * so whoever relays the carriers' webhooks can address the review signal
 * without looking it up. Input: {"brand", "use_case", "numbers" (how many, 1..10),
 * "review_timeout_ms" (passed on to the campaign; 24 h when absent)}. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "baton.h"

static uint32_t hash(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

static const char *text(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));

    return s ? s : "?";
}

static json_t *or_null(json_t *value)
{
    return value ? value : json_null();
}

/* ---- activities ---- */

static int register_brand(bt_act *act, const json_t *input, json_t **result)
{
    const char *brand = json_string_value(json_object_get(input, "brand"));
    char id[32];

    if (!brand || !*brand)
        return bt_act_fail(act, "InvalidInput", false, "input needs a \"brand\" string");
    /* keyed by the idempotency key: a retried attempt gets the same brand id */
    snprintf(id, sizeof(id), "BRD-%06x",
             (unsigned)(hash(bt_act_idempotency_key(act)) & 0xffffff));
    *result = json_pack("{s:s, s:s}", "brand_id", id, "brand", brand);
    return 0;
}

static int register_numbers(bt_act *act, const json_t *input, json_t **result)
{
    json_int_t count = json_integer_value(json_object_get(input, "count"));
    uint32_t base = hash(bt_act_idempotency_key(act)) % 9000 + 1000;
    json_t *numbers = json_array();

    for (json_int_t i = 0; i < count; i++) {
        char number[32];
        snprintf(number, sizeof(number), "+1555%04u%03u", (unsigned)base, (unsigned)i);
        json_array_append_new(numbers, json_string(number));
    }
    *result = json_pack("{s:O, s:o}", "campaign_id",
                        json_object_get(input, "campaign_id"), "numbers", numbers);
    return 0;
}

/* ---- the workflow ---- */

static bt_poll brand_registration(bt_wf *wf, const json_t *input)
{
    const json_t *brand, *campaign, *error, *registered = NULL;
    const json_t *n = json_object_get(input, "numbers");
    json_int_t count = json_is_integer(n) ? json_integer_value(n) : 2;
    char child_id[300];
    const char *status;
    bt_future *child;
    json_t *req, *summary;

    if (count < 1 || count > 10)
        return bt_fail(wf, "InvalidInput", "\"numbers\" must be 1..10, not %lld",
                       (long long)count);
    BT_RUN(wf, &brand, "register_brand", json_deep_copy(input), NULL);

    req = json_pack("{s:O?, s:O?, s:O?}", "brand_id", json_object_get(brand, "brand_id"),
                    "brand", json_object_get(brand, "brand"), "use_case",
                    json_object_get(input, "use_case"));
    if (json_object_get(input, "review_timeout_ms"))
        json_object_set(req, "review_timeout_ms",
                        json_object_get(input, "review_timeout_ms"));
    snprintf(child_id, sizeof(child_id), "%s/campaign", bt_workflow_id(wf));
    child = bt_start_child(wf, "campaign_registration", req,
                           &(struct bt_step_opts){.queue = "campaigns", .id = child_id});
    switch (bt_await(wf, child, &campaign, &error)) {
    case BT_PENDING:
        return BT_PENDING;
    case BT_FAILED:
        return bt_fail(wf, "CampaignFailed", "campaign %s: %s: %s", child_id,
                       text(error, "type"), text(error, "message"));
    case BT_READY:
        break;
    }

    status = json_string_value(json_object_get(campaign, "status"));
    if (!status)
        return bt_fail(wf, "CampaignFailed", "campaign %s ended without a status",
                       child_id);
    if (!strcmp(status, "approved"))
        BT_RUN(wf, &registered, "register_numbers",
               json_pack("{s:O?, s:I}", "campaign_id",
                         json_object_get(campaign, "campaign_id"), "count", count),
               NULL);
    summary = json_pack("{s:O?, s:O?, s:s, s:O?, s:s, s:O?}", "brand",
                        json_object_get(brand, "brand"), "brand_id",
                        json_object_get(brand, "brand_id"), "campaign", child_id,
                        "campaign_id", json_object_get(campaign, "campaign_id"), "status",
                        status, "resends", json_object_get(campaign, "resends"));
    if (registered)
        json_object_set(summary, "numbers",
                        or_null(json_object_get(registered, "numbers")));
    else
        json_object_set(summary, "reason", or_null(json_object_get(campaign, "reason")));
    return bt_complete(wf, summary);
}

int baton_register(bt_registry *r);
int baton_register(bt_registry *r)
{
    if (bt_register_workflow(r, "brand_registration", brand_registration) ||
        bt_register_activity(r, "register_brand", register_brand, NULL) ||
        bt_register_activity(r, "register_numbers", register_numbers, NULL))
        return -1;
    return 0;
}
