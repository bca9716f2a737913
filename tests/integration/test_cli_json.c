/* `--json` of every command that shows something, against a real stack:
 * each prints JSON only (one object, or one per line), with the field names
 * the README's CLI reference documents, and times in RFC 3339. */
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
    worker = bt_stack_worker(&stack, "flows", NULL);
    cr_assert_gt(worker, 0);
}

static void teardown(void)
{
    bt_test_kill9(worker);
    bt_stack_stop(&stack);
}

/* Every line of out (what the command printed, stderr too) as JSON: a new
 * array; the test fails on a line that is not JSON. */
static json_t *lines_of(const char *out)
{
    json_t *lines = json_array();
    const char *p = out;

    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        json_error_t jerr;
        json_t *v = json_loadb(p, len, 0, &jerr);
        cr_assert(v, "not a JSON line: %.*s (%s)", (int)len, p, jerr.text);
        json_array_append_new(lines, v);
        p += len + (nl ? 1 : 0);
    }
    return lines;
}

/* The JSON lines of `baton args...` (NULL-terminated), which must exit 0. */
static json_t *json_of(const char *const *args)
{
    static char out[65536];
    int rc = bt_stack_baton(&stack, out, sizeof(out), args);

    cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
    return lines_of(out);
}
#define JSON_OF(...) json_of((const char *const[]){__VA_ARGS__, NULL})

static const char *s(const json_t *o, const char *name)
{
    const char *v = json_string_value(json_object_get(o, name));

    cr_assert(v, "no string %s in %s", name, json_dumps(o, JSON_COMPACT));
    return v;
}

static bool rfc3339(const char *t)
{
    return strlen(t) == 24 && t[4] == '-' && t[10] == 'T' && t[19] == '.' && t[23] == 'Z';
}

Test(cli_json, instances_as_describe_list_and_history_show_them, .init = setup,
     .fini = teardown, .timeout = 90)
{
    char out[8192];
    json_t *lines, *root, *step;
    size_t i;

    cr_assert_eq(BT_STACK_BATON(&stack, out, "start", "chain3", "--id", "js-1", "--input",
                                "{\"v\":1}", "--wait"),
                 0, "%s", out);
    lines = JSON_OF("describe", "js-1", "--json");
    cr_assert_eq(json_array_size(lines), 1);
    root = json_array_get(lines, 0);
    cr_assert_str_eq(s(root, "id"), "js-1");
    cr_assert_str_eq(s(root, "type"), "chain3");
    cr_assert_str_eq(s(root, "status"), "completed");
    cr_assert(rfc3339(s(root, "created")) && rfc3339(s(root, "updated")));
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(root, "input"), "v")),
                 1, "input is JSON, not text");
    cr_assert_eq(
        json_integer_value(json_object_get(json_object_get(root, "result"), "v")), 4);
    cr_assert_eq(json_integer_value(json_object_get(root, "run")), 1);
    cr_assert(json_is_false(json_object_get(root, "cancel_requested")));
    cr_assert_eq(json_array_size(json_object_get(root, "steps")), 3);
    json_array_foreach(json_object_get(root, "steps"), i, step)
    {
        cr_assert_eq(json_integer_value(json_object_get(step, "seq")), (json_int_t)i);
        cr_assert_str_eq(s(step, "kind"), "activity");
        cr_assert_str_eq(s(step, "state"), "done");
        cr_assert_eq(json_integer_value(json_object_get(step, "attempt")), 1);
        cr_assert(json_is_object(json_object_get(step, "value")));
    }
    json_decref(lines);

    lines = JSON_OF("list", "--json", "--status=completed");
    cr_assert_eq(json_array_size(lines), 1, "JSON lines, no header");
    root = json_array_get(lines, 0);
    cr_assert_str_eq(s(root, "id"), "js-1");
    cr_assert_str_eq(s(root, "type"), "chain3");
    cr_assert_str_eq(s(root, "status"), "completed");
    cr_assert(rfc3339(s(root, "created")));
    json_decref(lines);

    lines = JSON_OF("history", "js-1", "--json");
    cr_assert_gt(json_array_size(lines), 3);
    cr_assert_str_eq(s(json_array_get(lines, 0), "ev"), "started");
    json_array_foreach(lines, i, root) cr_assert(rfc3339(s(root, "ts")));
    cr_assert_str_eq(s(json_array_get(lines, json_array_size(lines) - 1), "ev"),
                     "finished");
    json_decref(lines);

    lines = JSON_OF("stats", "--json");
    cr_assert_eq(json_array_size(lines), 1);
    root = json_array_get(lines, 0);
    step = json_object_get(json_object_get(root, "types"), "chain3");
    cr_assert_eq(json_integer_value(json_object_get(step, "completed")), 1);
    cr_assert_eq(json_integer_value(json_object_get(step, "total")), 1);
    cr_assert_eq(json_integer_value(json_object_get(root, "finished_last_minute")), 1);
    cr_assert(
        json_is_integer(json_object_get(json_object_get(root, "timers"), "pending")));
    cr_assert(json_is_integer(json_object_get(json_object_get(root, "outbox"), "stale")));
    cr_assert_eq(json_integer_value(json_object_get(root, "dead_letters")), 0);
    json_decref(lines);
}

Test(cli_json, schedules_and_limits, .init = setup, .fini = teardown, .timeout = 90)
{
    char out[8192];
    json_t *lines, *root;

    cr_assert_eq(BT_STACK_BATON(&stack, out, "schedule", "add", "nightly", "--cron",
                                "0 3 * * *", "--workflow=chain3", "--tz", "Europe/Paris"),
                 0, "%s", out);
    lines = JSON_OF("schedule", "list", "--json");
    cr_assert_eq(json_array_size(lines), 1);
    root = json_array_get(lines, 0);
    cr_assert_str_eq(s(root, "name"), "nightly");
    cr_assert_str_eq(s(root, "state"), "active");
    cr_assert(rfc3339(s(root, "next")));
    cr_assert_str_eq(s(root, "cron"), "0 3 * * *");
    cr_assert_str_eq(s(root, "tz"), "Europe/Paris");
    cr_assert_str_eq(s(root, "workflow"), "chain3");
    cr_assert_str_eq(s(root, "queue"), "default");
    cr_assert_str_eq(s(root, "overlap"), "skip");
    cr_assert(json_is_false(json_object_get(root, "once")));
    json_decref(lines);

    lines = JSON_OF("ratelimit", "set", "carriers", "10/s", "--burst", "4", "--json");
    cr_assert_eq(json_array_size(lines), 1);
    json_decref(lines);
    lines = JSON_OF("ratelimit", "get", "carriers", "--json");
    root = json_array_get(lines, 0);
    cr_assert_str_eq(s(root, "key"), "carriers");
    cr_assert_eq(json_integer_value(json_object_get(root, "rate")), 10);
    cr_assert_eq(json_integer_value(json_object_get(root, "burst")), 4);
    cr_assert(json_is_null(json_object_get(root, "until")));
    json_decref(lines);
    lines = JSON_OF("ratelimit", "list", "--json");
    cr_assert_eq(json_array_size(lines), 1);
    json_decref(lines);

    lines = JSON_OF("concurrency", "set", "carrier:att", "5", "--json");
    json_decref(lines);
    lines = JSON_OF("concurrency", "get", "carrier:att", "--json");
    root = json_array_get(lines, 0);
    cr_assert_str_eq(s(root, "key"), "carrier:att");
    cr_assert_eq(json_integer_value(json_object_get(root, "limit")), 5);
    cr_assert_eq(json_integer_value(json_object_get(root, "in_use")), 0);
    json_decref(lines);
    lines = JSON_OF("concurrency", "list", "--json");
    cr_assert_eq(json_array_size(lines), 1);
    json_decref(lines);
}
