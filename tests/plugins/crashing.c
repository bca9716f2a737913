/* Code that crashes its worker, for the crashes suite (test_crashes.c): a
 * bug in a user's plugin met by one input, such as a NULL dereference on a
 * field the code expected. With BT_TEST_CRASH=1 in the worker's
 * environment, an instance whose input says {"crash": "workflow"} raises
 * SIGSEGV in its workflow code, one that says {"crash": "loop"} loops there
 * for ever, "exit" calls exit(3) there; {"crash": "activity"} aborts in its
 * activity and "hang" never returns from it (1 s timeout); without it (the
 * fixed deploy) they all run through. The type crashing_all is a bad
 * deploy: with BT_TEST_CRASH=1 its code raises SIGSEGV on every input.
 * Other inputs run one step and complete. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "baton.h"

static bool crashes(const json_t *input, const char *where)
{
    const char *crash = json_string_value(json_object_get(input, "crash"));
    const char *armed = getenv("BT_TEST_CRASH");

    return crash && !strcmp(crash, where) && armed && !strcmp(armed, "1");
}

static int step(bt_act *act, const json_t *input, json_t **result)
{
    (void)act;
    if (crashes(input, "activity"))
        abort();
    if (crashes(input, "hang")) /* waits for a reply that never comes */
        for (;;)
            pause();
    *result = json_pack("{s:b}", "ran", 1);
    return 0;
}

static bt_poll crashing(bt_wf *wf, const json_t *input)
{
    /* one attempt: what an attempt lost to crashes costs is seen at once; a
     * short timeout for the one that hangs */
    const struct bt_step_opts once = {.retry = {.max_attempts = 1},
                                      .start_to_close_ms =
                                          crashes(input, "hang") ? 1000 : 0};

    if (crashes(input, "workflow"))
        raise(SIGSEGV);
    if (crashes(input, "exit"))
        exit(3);
    if (crashes(input, "loop"))
        for (volatile unsigned long spin = 0;; spin++)
            ;
    BT_RUN(wf, NULL, "crashing_step", json_incref((json_t *)(uintptr_t)input), &once);
    return bt_complete(wf, json_pack("{s:b}", "done", 1));
}

static bt_poll crashing_all(bt_wf *wf, const json_t *input)
{
    const char *armed = getenv("BT_TEST_CRASH");

    if (armed && !strcmp(armed, "1"))
        raise(SIGSEGV);
    return crashing(wf, input);
}

int baton_register(bt_registry *r);
int baton_register(bt_registry *r)
{
    return bt_register_workflow(r, "crashing", crashing) ||
                   bt_register_workflow(r, "crashing_all", crashing_all) ||
                   bt_register_activity(r, "crashing_step", step, NULL)
               ? -1
               : 0;
}
