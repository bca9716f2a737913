/* What the three "steps" plugins share: each is one deploy of the same
 * workflow; only the function steps() differs between them. */
#ifndef BT_TEST_STEPS_H
#define BT_TEST_STEPS_H

#include <stdio.h>

#include "baton.h"

static int step(bt_act *act, const json_t *input, json_t **result)
{
    (void)act;
    (void)input;
    *result = json_true();
    return 0;
}

/* step i: wait for a "go", then run activity "s<i>" */
#define STEP(i)                                                                          \
    do {                                                                                 \
        char name[16];                                                                   \
        const json_t *go;                                                                \
        snprintf(name, sizeof(name), "s%d", (i));                                        \
        BT_WAIT_SIGNAL(wf, &go, "go", -1);                                               \
        BT_RUN(wf, NULL, name, NULL, NULL);                                              \
    } while (0)

static bt_poll steps(bt_wf *wf, const json_t *input);

int baton_register(bt_registry *r);
int baton_register(bt_registry *r)
{
    char name[16];

    if (bt_register_workflow(r, "steps", steps) ||
        bt_register_activity(r, "s5_2", step, NULL))
        return -1;
    for (int i = 1; i <= 12; i++) {
        snprintf(name, sizeof(name), "s%d", i);
        if (bt_register_activity(r, name, step, NULL))
            return -1;
    }
    return 0;
}

#endif
