/* What the three "versioned" plugins share: each is one deploy of the same
 * workflow; only the function versioned() differs between them. */
#ifndef BT_TEST_VERSIONED_H
#define BT_TEST_VERSIONED_H

#include "baton.h"

static int step(bt_act *act, const json_t *input, json_t **result)
{
    (void)act;
    (void)input;
    *result = json_true();
    return 0;
}

static bt_poll versioned(bt_wf *wf, const json_t *input);

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

#endif
