/* The "versioned" workflow, version 3 swaps a and b: instances started on version 1 must
 * block. */
#include "baton.h"

static int step(bt_act *act, const json_t *input, json_t **result)
{
    (void)act;
    (void)input;
    *result = json_true();
    return 0;
}

static bt_poll versioned(bt_wf *wf, const json_t *input)
{
    const json_t *go;

    BT_RUN(wf, NULL, "b", json_incref((json_t *)(uintptr_t)input), NULL); /* reordered */
    BT_WAIT_SIGNAL(wf, &go, "go", -1);
    BT_RUN(wf, NULL, "a", NULL, NULL);
    return bt_complete(wf, json_pack("{s:s}", "ran", "b,a"));
}

int baton_register(bt_registry *r);
int baton_register(bt_registry *r)
{
    if (bt_register_workflow(r, "versioned", versioned) ||
        bt_register_activity(r, "a", step, NULL) ||
        bt_register_activity(r, "b", step, NULL) ||
        bt_register_activity(r, "c", step, NULL))
        return -1;
    return 0;
}
