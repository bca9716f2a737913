/* Team B's plugin: the child workflow type "shipment" and its activities,
 * all on queue "team-b". Loaded by team B's worker only. */
#include <string.h>

#include "baton.h"

static const struct bt_step_opts on_team_b = {.queue = "team-b",
                                              .retry = {.max_attempts = 1}};

/* input.fail: fail for good, non-retryably */
static int pack(bt_act *act, const json_t *input, json_t **result)
{
    if (json_is_true(json_object_get(input, "fail")))
        return bt_act_fail(act, "OutOfStock", false, "nothing left to pack");
    *result = json_pack("{s:s, s:s}", "packed", "yes", "by", "team-b");
    return 0;
}

static int unpack(bt_act *act, const json_t *input, json_t **result)
{
    (void)act;
    (void)input;
    *result = json_pack("{s:s}", "unpacked", "yes");
    return 0;
}

/* input: {"fail": bool, "wait": bool}: with wait, the shipment waits for a
 * "ship" signal after packing, so a test can close the parent meanwhile; a
 * cancellation runs the unpack cleanup step. */
static bt_poll shipment(bt_wf *wf, const json_t *input)
{
    const json_t *packed, *go;
    bt_poll p =
        bt_await(wf, bt_start(wf, "pack", json_deep_copy(input), NULL), &packed, NULL);

    if (p != BT_READY)
        return p;
    if (json_is_true(json_object_get(input, "wait"))) {
        p = bt_wait_signal(wf, "ship", -1, &go);
        if (p == BT_PENDING)
            return BT_PENDING;
        if (p == BT_FAILED) {
            BT_RUN(wf, NULL, "unpack", NULL, NULL);
            return bt_fail(wf, "Cancelled", "shipment cancelled, unpacked");
        }
    }
    return bt_complete(wf, json_pack("{s:O, s:s}", "pack", packed, "run_by", "team-b"));
}

int baton_register(bt_registry *r);
int baton_register(bt_registry *r)
{
    return bt_register_workflow(r, "shipment", shipment) ||
           bt_register_activity(r, "pack", pack, &on_team_b) ||
           bt_register_activity(r, "unpack", unpack, &on_team_b);
}
