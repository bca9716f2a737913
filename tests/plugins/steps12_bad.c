/* The "steps" workflow, a bad deploy: steps 8 and 9 swapped, which instances past step 8
 * cannot replay. */
#include "steps.h"

static bt_poll steps(bt_wf *wf, const json_t *input)
{
    (void)input;
    static const int order[] = {1, 2, 3, 4, 5, 6, 7, 9, 8, 10};
    for (int i = 0; i < 10; i++)
        STEP(order[i]);
    return bt_complete(wf, json_pack("{s:s}", "version", "12-bad"));
}
