/* The engine end to end: real redis-server, the Kafka mock cluster, real
 * baton-worker processes running the test plugin (tests/plugins/flows.c). */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "stack.h"

static struct bt_stack stack;

static void setup(void)
{
    static const char *const queues[] = {"legacy", NULL};
    cr_assert_eq(bt_stack_start(&stack, queues), 0, "cannot start the stack");
}

static void teardown(void)
{
    bt_stack_stop(&stack);
}

/* Distinct results by id, and the raw count (duplicates are allowed on Kafka). */
struct results {
    int want;
    int raw;
    int distinct;
    char **ids;
    json_t *by_id;
};

static bool collect(const json_t *msg, void *arg)
{
    struct results *r = arg;
    const char *id = json_string_value(json_object_get(msg, "id"));

    r->raw++;
    if (id && !json_object_get(r->by_id, id)) {
        json_object_set(r->by_id, id, (json_t *)(uintptr_t)msg);
        r->distinct++;
    }
    return r->distinct >= r->want;
}

static void read_results(struct results *r, int want, int wait_ms)
{
    memset(r, 0, sizeof(*r));
    r->want = want;
    r->by_id = json_object();
    bt_stack_read(&stack, "results", wait_ms, collect, r);
}

static bool count_journal_done(const char *id, int want_steps)
{
    redisReply *reply = bt_stack_redis(&stack, "HVALS %s:{%s}:journal", stack.prefix, id);
    int done = 0;

    for (size_t i = 0; reply && i < reply->elements; i++) {
        json_t *e = json_loads(reply->element[i]->str, 0, NULL);
        done += json_integer_value(json_object_get(e, "s")) == 4; /* BT_ST_DONE */
        json_decref(e);
    }
    bool ok = reply && (int)reply->elements == want_steps && done == want_steps;
    freeReplyObject(reply);
    return ok;
}

Test(engine, completes_a_thousand_three_step_workflows_started_through_kafka,
     .init = setup, .fini = teardown, .timeout = 120)
{
    const int n = 1000;
    struct results r;
    pid_t worker = bt_stack_worker(&stack, "flows", NULL);

    cr_assert_gt(worker, 0);
    for (int i = 0; i < n; i++) {
        char id[64];
        snprintf(id, sizeof(id), "chain-%d", i);
        cr_assert_eq(bt_stack_start_wf(&stack, "chain3", id, json_pack("{s:i, s:s}", "v", i,
                                                                        "pad", "xxxxxxxx")),
                     0);
    }
    read_results(&r, n, 90000);
    cr_assert_eq(r.distinct, n, "results: %d distinct of %d (raw %d)", r.distinct, n, r.raw);
    cr_log_info("results: distinct=%d raw=%d", r.distinct, r.raw);
    for (int i = 0; i < n; i++) {
        char id[64];
        json_t *res;
        snprintf(id, sizeof(id), "chain-%d", i);
        res = json_object_get(r.by_id, id);
        cr_assert_str_eq(json_string_value(json_object_get(res, "status")), "completed");
        cr_assert_eq(json_integer_value(json_object_get(json_object_get(res, "result"), "v")),
                     i + 3, "%s: each step must be applied exactly once", id);
        cr_assert(count_journal_done(id, 3), "%s: journal must hold 3 completed steps", id);
    }
    json_decref(r.by_id);
    cr_assert_eq(bt_test_stop(worker, 10000), 0, "the worker must exit cleanly on SIGTERM");
}

Test(engine, fans_out_and_in_whatever_the_completion_order, .init = setup,
     .fini = teardown, .timeout = 60)
{
    struct results r;
    pid_t worker = bt_stack_worker(&stack, "flows", (const char *const[]){"--concurrency", "3", NULL});

    cr_assert_gt(worker, 0);
    for (int i = 0; i < 20; i++) {
        char id[64];
        snprintf(id, sizeof(id), "fan-%d", i);
        cr_assert_eq(bt_stack_start_wf(&stack, "fanout3", id, json_pack("{s:i}", "max_ms", 30)),
                     0);
    }
    read_results(&r, 20, 30000);
    cr_assert_eq(r.distinct, 20);
    for (int i = 0; i < 20; i++) {
        char id[64];
        snprintf(id, sizeof(id), "fan-%d", i);
        json_t *order = json_object_get(json_object_get(json_object_get(r.by_id, id), "result"),
                                        "order");
        /* fan-in collects by future, not by arrival: always 0, 1, 2 */
        cr_assert_eq(json_array_size(order), 3);
        for (int k = 0; k < 3; k++)
            cr_assert_eq(json_integer_value(json_array_get(order, k)), k);
        cr_assert(count_journal_done(id, 3));
    }
    json_decref(r.by_id);
    bt_test_stop(worker, 10000);
}

Test(engine, side_effects_are_recorded_and_replayed_identically, .init = setup,
     .fini = teardown, .timeout = 60)
{
    struct results r;
    pid_t worker = bt_stack_worker(&stack, "flows", NULL);

    cr_assert_eq(bt_stack_start_wf(&stack, "side_effects", "se-1", json_pack("{s:i}", "v", 1)),
                 0);
    read_results(&r, 1, 30000);
    json_t *res = json_object_get(json_object_get(r.by_id, "se-1"), "result");
    cr_assert_not_null(res);
    /* the first values were recorded before the activity and replayed after it */
    cr_assert_gt(json_integer_value(json_object_get(res, "now")), 1600000000000LL);
    cr_assert_eq(strlen(json_string_value(json_object_get(res, "uuid"))), 36);
    cr_assert_str_neq(json_string_value(json_object_get(res, "uuid")),
                      json_string_value(json_object_get(res, "uuid_again")));
    cr_assert_geq(json_integer_value(json_object_get(res, "now_again")),
                  json_integer_value(json_object_get(res, "now")));
    /* the value the code saw on its last replay is the one in the journal */
    redisReply *e0 = bt_stack_redis(&stack, "HGET %s:{se-1}:journal 0", stack.prefix);
    json_t *entry = json_loads(e0->str, 0, NULL);
    cr_assert_eq(json_integer_value(json_object_get(entry, "v")),
                 json_integer_value(json_object_get(res, "now")));
    json_decref(entry);
    freeReplyObject(e0);
    json_decref(r.by_id);
    bt_test_stop(worker, 10000);
}
