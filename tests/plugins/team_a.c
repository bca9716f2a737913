/* Team A's plugin for the child-workflow tests: parents on the default
 * queue that start a child of a type only team B's plugin (team_b.c) has, on
 * team B's queue "team-b". This plugin never sees the child's code. */
#include <string.h>

#include "baton.h"

static int note(bt_act *act, const json_t *input, json_t **result)
{
    (void)act;
    *result =
        json_pack("{s:O}", "noted", input ? (json_t *)(uintptr_t)input : json_null());
    return 0;
}

static enum bt_parent_close policy(const json_t *input)
{
    const char *p = json_string_value(json_object_get(input, "on_close"));

    if (p && !strcmp(p, "terminate"))
        return BT_PARENT_CLOSE_TERMINATE;
    if (p && !strcmp(p, "abandon"))
        return BT_PARENT_CLOSE_ABANDON;
    return BT_PARENT_CLOSE_CANCEL;
}

/* input: {"child_input": {...}, "on_close": "cancel|terminate|abandon",
 *         "child_id": optional} -> {"child": child result} or the child's
 * failure, handled: {"child_failed": error} */
static bt_poll order(bt_wf *wf, const json_t *input)
{
    const json_t *result, *error;
    struct bt_step_opts opts = {
        .queue = "team-b",
        .id = json_string_value(json_object_get(input, "child_id")),
        .on_parent_close = policy(input),
    };
    bt_future *child = bt_start_child(
        wf, "shipment", json_incref(json_object_get(input, "child_input")), &opts);
    bt_poll p = bt_await(wf, child, &result, &error);

    if (p == BT_PENDING)
        return BT_PENDING;
    if (p == BT_FAILED) {
        if (bt_cancel_requested(wf)) {
            BT_RUN(wf, NULL, "note", json_string("parent cleanup"), NULL);
            return bt_fail(wf, "Cancelled", "order cancelled");
        }
        return bt_complete(wf, json_pack("{s:O}", "child_failed", error));
    }
    BT_RUN(wf, NULL, "note", json_incref((json_t *)(uintptr_t)result), NULL);
    return bt_complete(wf, json_pack("{s:O}", "child", result));
}

int baton_register(bt_registry *r);
int baton_register(bt_registry *r)
{
    return bt_register_workflow(r, "order", order) ||
           bt_register_activity(r, "note", note, NULL);
}
