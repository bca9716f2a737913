/* The "versioned" workflow, version 2 appends step c: compatible with instances started
 * on version 1. */
#include "versioned.h"

static bt_poll versioned(bt_wf *wf, const json_t *input)
{
    const json_t *go;

    BT_RUN(wf, NULL, "a", json_incref((json_t *)(uintptr_t)input), NULL);
    BT_WAIT_SIGNAL(wf, &go, "go", -1);
    BT_RUN(wf, NULL, "b", NULL, NULL);
    BT_RUN(wf, NULL, "c", NULL, NULL); /* appended in version 2 */
    return bt_complete(wf, json_pack("{s:s}", "ran", "a,b,c"));
}
