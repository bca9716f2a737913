/* A plugin that says it was built for another baton ABI than this tree's:
 * programs must refuse it before running any of its code. It defines
 * baton_abi_version itself, so it asks baton.h not to. */
#define BATON_NO_ABI_SYMBOL
#include "baton.h"

BATON_EXPORT const int baton_abi_version = BATON_ABI_VERSION + 1;

static bt_poll never(bt_wf *wf, const json_t *input)
{
    (void)input;
    return bt_fail(wf, "Unreachable", "a plugin of another ABI ran");
}

int baton_register(bt_registry *r)
{
    return bt_register_workflow(r, "abi_other", never);
}
