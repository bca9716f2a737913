/* The "steps" workflow, ten steps, each after a "go" signal: instances pause at the step
 * they got to. */
#include "steps.h"

static bt_poll steps(bt_wf *wf, const json_t *input)
{
    (void)input;
    for (int i = 1; i <= 10; i++)
        STEP(i);
    return bt_complete(wf, json_pack("{s:s}", "version", "10"));
}
