/* The "versioned" workflow, version 2 appends step c: compatible with instances started
 * on version 1. */
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

    BT_RUN(wf, NULL, "a", json_incref((json_t *)(uintptr_t)input), NULL);
    BT_WAIT_SIGNAL(wf, &go, "go", -1);
    BT_RUN(wf, NULL, "b", NULL, NULL);
    BT_RUN(wf, NULL, "c", NULL, NULL); /* appended in version 2 */
    return bt_complete(wf, json_pack("{s:s}", "ran", "a,b,c"));
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
