/* The "versioned" workflow, version 1: a, wait for "go", b. */
#include "versioned.h"

static bt_poll versioned(bt_wf *wf, const json_t *input)
{
    const json_t *go;

    BT_RUN(wf, NULL, "a", json_incref((json_t *)(uintptr_t)input), NULL);
    BT_WAIT_SIGNAL(wf, &go, "go", -1);
    BT_RUN(wf, NULL, "b", NULL, NULL);
    return bt_complete(wf, json_pack("{s:s}", "ran", "a,b"));
}
