/* `baton dlq`: a start of a workflow type no worker has is dead-lettered;
 * once a worker that has it runs, `baton dlq redrive` sends it again and the
 * instance completes; a second redrive sends nothing. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stack.h"

static struct bt_stack stack;
static pid_t worker;

static void setup(void)
{
    cr_assert_eq(bt_stack_start(&stack, NULL), 0, "cannot start the stack");
    /* a worker without chain3: its start is dead-lettered */
    worker = bt_stack_worker(&stack, "sizes", NULL);
    cr_assert_gt(worker, 0);
}

static void teardown(void)
{
    bt_test_kill9(worker);
    bt_stack_stop(&stack);
}

#define BATON(out, ...) BT_STACK_BATON(&stack, (out), __VA_ARGS__)

static bool first(const json_t *msg, void *arg)
{
    (void)msg;
    (void)arg;
    return true;
}

Test(cli_dlq, a_dead_letter_redriven_after_the_deploy_completes_once, .init = setup,
     .fini = teardown, .timeout = 120)
{
    static const char start[] =
        "{\"v\":1,\"type\":\"start\",\"id\":\"dl-1\",\"workflow\":"
        "\"chain3\",\"input\":{\"v\":1}}";
    char out[16384], buf[32];
    json_t *root;
    bool ok;

    cr_assert_eq(bt_stack_produce(&stack, "events", "dl-1", start, strlen(start)), 0);
    cr_assert_eq(bt_stack_read(&stack, "dlq", 30000, first, NULL), 1,
                 "the start of an unknown type is dead-lettered");

    cr_assert_eq(BATON(out, "dlq", "list", "--json"), 0, "%s", out);
    root = json_loads(out, JSON_DISABLE_EOF_CHECK, NULL);
    cr_assert(root, "%s", out);
    cr_assert(strstr(json_string_value(json_object_get(root, "reason")), "unknown"), "%s",
              out);
    cr_assert(json_is_false(json_object_get(root, "redriven")));
    char name[48];
    snprintf(name, sizeof(name), "%s", json_string_value(json_object_get(root, "name")));
    json_decref(root);
    cr_assert_eq(BATON(out, "dlq", "list", "--origin", "nowhere"), 0, "%s", out);
    cr_assert(!strstr(out, name), "--origin filters: %s", out);
    cr_assert_eq(BATON(out, "dlq", "show", name), 0, "%s", out);
    cr_assert(strstr(out, "\"workflow\":\"chain3\"") && strstr(out, "dl-1"), "%s", out);
    cr_assert_eq(BATON(out, "dlq", "show", "9:999"), 1, "%s", out);

    /* the fix: a worker that has chain3 */
    bt_test_kill9(worker);
    worker = bt_stack_worker(&stack, "flows", NULL);
    cr_assert_gt(worker, 0);
    cr_assert_eq(BATON(out, "dlq", "redrive", "--reason", "unknown workflow type",
                       "--since", "1h"),
                 0, "%s", out);
    cr_assert(strstr(out, "redriven: 1;"), "%s", out);
    BT_TEST_WAIT_UNTIL(
        ok, !strcmp(bt_stack_status(&stack, "dl-1", buf, sizeof(buf)), "completed"),
        30000);
    cr_assert(ok, "the redriven start runs: %s", buf);
    cr_assert_eq(BATON(out, "dlq", "redrive"), 0, "%s", out);
    cr_assert(strstr(out, "redriven: 0; skipped: 1 already redriven"), "%s", out);
    cr_assert_eq(BATON(out, "dlq", "list"), 0, "%s", out);
    cr_assert(strstr(out, name) && strstr(out, " yes "), "%s", out);
}
