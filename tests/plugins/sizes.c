/* Workflows whose messages outgrow the payload limit, each in its own way:
 * an activity's result, a step's input made by the workflow code, and the
 * workflow's own result. Each must fail its instance with PayloadTooLarge
 * and leave its partition flowing. input: {"bytes": n}. */
#include <stdlib.h>
#include <string.h>

#include "baton.h"

static json_t *blob_of(const json_t *input)
{
    size_t n = (size_t)json_integer_value(json_object_get(input, "bytes"));
    char *text = malloc(n + 1);
    json_t *blob;

    if (!text)
        return NULL;
    memset(text, 'x', n);
    text[n] = '\0';
    blob = json_pack("{s:s}", "blob", text);
    free(text);
    return blob;
}

static int blob(bt_act *act, const json_t *input, json_t **result)
{
    (void)act;
    *result = blob_of(input);
    return 0;
}

static int echo(bt_act *act, const json_t *input, json_t **result)
{
    (void)act;
    *result = json_deep_copy(input);
    return 0;
}

static bt_poll big_result(bt_wf *wf, const json_t *input)
{
    const json_t *out;

    BT_RUN(wf, &out, "blob", json_deep_copy(input), NULL);
    return bt_complete(wf, json_deep_copy(out));
}

static bt_poll big_step(bt_wf *wf, const json_t *input)
{
    const json_t *out;

    BT_RUN(wf, &out, "echo", blob_of(input), NULL);
    return bt_complete(wf, json_deep_copy(out));
}

static bt_poll big_finish(bt_wf *wf, const json_t *input)
{
    const json_t *out;

    BT_RUN(wf, &out, "echo", json_deep_copy(input), NULL);
    return bt_complete(wf, blob_of(out));
}

int baton_register(bt_registry *r);
int baton_register(bt_registry *r)
{
    return bt_register_workflow(r, "big_result", big_result) ||
           bt_register_workflow(r, "big_step", big_step) ||
           bt_register_workflow(r, "big_finish", big_finish) ||
           bt_register_workflow(r, "small", big_finish) ||
           bt_register_activity(r, "blob", blob, NULL) ||
           bt_register_activity(r, "echo", echo, NULL);
}
