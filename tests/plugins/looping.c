/* Workflows that loop for long: "looper" continues as new after each tick
 * (bounded history), "forever" never does (and hits the history limit). */
#include "baton.h"

static int tick(bt_act *act, const json_t *input, json_t **result)
{
    (void)act;
    *result = json_pack("{s:I}", "i", json_integer_value(json_object_get(input, "i")));
    return 0;
}

/* input {"i": n, "until": N, "sum": s}: one tick and a short sleep per run,
 * then the next run with i + 1; the last run completes with the total. */
static bt_poll looper(bt_wf *wf, const json_t *input)
{
    json_int_t i = json_integer_value(json_object_get(input, "i"));
    json_int_t until = json_integer_value(json_object_get(input, "until"));
    json_int_t sum = json_integer_value(json_object_get(input, "sum"));
    const json_t *ticked;

    BT_RUN(wf, &ticked, "tick", json_pack("{s:I}", "i", i), NULL);
    BT_SLEEP(wf, 1);
    sum += json_integer_value(json_object_get(ticked, "i"));
    if (i + 1 < until)
        return bt_continue_as_new(
            wf, json_pack("{s:I, s:I, s:I}", "i", i + 1, "until", until, "sum", sum));
    return bt_complete(wf,
                       json_pack("{s:i, s:I}", "runs", bt_workflow_run(wf), "sum", sum));
}

static bt_poll forever(bt_wf *wf, const json_t *input)
{
    (void)input;
    for (json_int_t i = 0;; i++)
        BT_RUN(wf, NULL, "tick", json_pack("{s:I}", "i", i), NULL);
}

/* continues as new without ever waiting: a bug the engine must stop */
static bt_poll spinner(bt_wf *wf, const json_t *input)
{
    (void)input;
    return bt_continue_as_new(wf, json_pack("{s:I}", "t", (json_int_t)bt_now(wf)));
}

int baton_register(bt_registry *r);
int baton_register(bt_registry *r)
{
    return bt_register_workflow(r, "looper", looper) ||
           bt_register_workflow(r, "forever", forever) ||
           bt_register_workflow(r, "spinner", spinner) ||
           bt_register_activity(r, "tick", tick, NULL);
}
