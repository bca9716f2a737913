/* A plugin built out of baton's tree, against an installed baton: what a team
 * starts from. The workflow "hello" greets its input's name through the
 * activity "greet", whose downstream fails the first call of each step (a
 * flaky API): baton retries it after 100 ms, and the result says which
 * attempt answered.
 *
 *   make                       # pkg-config: PKG_CONFIG_PATH=<prefix>/lib/pkgconfig
 *   cmake -S . -B build -DCMAKE_PREFIX_PATH=<prefix> && cmake --build build
 *   <prefix>/bin/baton-worker --plugin ./hello.so
 *   <prefix>/bin/baton start hello --input '{"name":"ada"}' --wait */
#include <stdio.h>

#include <baton.h>

static int greet(bt_act *act, const json_t *input, json_t **result)
{
    const char *name = json_string_value(json_object_get(input, "name"));
    char text[128];

    if (!name)
        return bt_act_fail(act, "BadInput", false, "input needs a \"name\" string");
    if (bt_act_attempt(act) == 1)
        return bt_act_fail(act, "Unavailable", true,
                           "the greeting service is warming up");
    snprintf(text, sizeof(text), "hello, %s", name);
    *result = json_pack("{s:s, s:i, s:s}", "greeting", text, "attempt",
                        bt_act_attempt(act), "key", bt_act_idempotency_key(act));
    return 0;
}

static bt_poll hello(bt_wf *wf, const json_t *input)
{
    const json_t *greeting;

    BT_RUN(wf, &greeting, "greet", json_deep_copy(input), NULL);
    return bt_complete(wf, json_deep_copy(greeting));
}

int baton_register(bt_registry *r)
{
    static const struct bt_step_opts flaky = {
        .retry = {.max_attempts = 3, .initial_ms = 100, .coefficient = 2.0}};

    if (bt_register_workflow(r, "hello", hello) ||
        bt_register_activity(r, "greet", greet, &flaky))
        return -1;
    return 0;
}
