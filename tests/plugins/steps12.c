/* The "steps" workflow, the compatible deploy: step 5.2 inserted behind a patch, steps 11
 * and 12 appended. */
#include "steps.h"

static bt_poll steps(bt_wf *wf, const json_t *input)
{
    (void)input;
    for (int i = 1; i <= 10; i++) {
        STEP(i);
        if (i == 5 && bt_patched(wf, "step-5.2"))
            BT_RUN(wf, NULL, "s5_2", NULL, NULL);
    }
    STEP(11);
    STEP(12);
    return bt_complete(wf, json_pack("{s:s}", "version", "12"));
}
