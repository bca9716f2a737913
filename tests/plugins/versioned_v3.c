/* The "versioned" workflow, version 3 swaps a and b: instances started on version 1 must
 * block. */
#include "versioned.h"

static bt_poll versioned(bt_wf *wf, const json_t *input)
{
    const json_t *go;

    BT_RUN(wf, NULL, "b", json_incref((json_t *)(uintptr_t)input), NULL); /* reordered */
    BT_WAIT_SIGNAL(wf, &go, "go", -1);
    BT_RUN(wf, NULL, "a", NULL, NULL);
    return bt_complete(wf, json_pack("{s:s}", "ran", "b,a"));
}
