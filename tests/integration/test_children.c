/* Child workflows across teams and queues, the parent-close policies, events
 * forwarded from the wrong topic, continue-as-new and the history limit.
 * Team A's worker (tests/plugins/team_a.c) serves the default queue, team B's
 * (team_b.c) serves "team-b": neither has the other's code. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stack.h"

static struct bt_stack stack;

static void setup(void)
{
    cr_assert_eq(bt_stack_start(&stack, (const char *const[]){"team-b", NULL}), 0,
                 "cannot start the stack");
}

static void teardown(void)
{
    bt_stack_stop(&stack);
}

static pid_t team_b_worker(void)
{
    return bt_stack_worker(&stack, "team_b",
                           (const char *const[]){"--queues", "team-b", NULL});
}

static const char *field(const char *id, const char *name, char *buf, size_t n)
{
    char key[300];
    redisReply *reply = bt_stack_redis(
        &stack, "HGET %s %s", bt_stack_key(&stack, id, "", key, sizeof(key)), name);

    snprintf(buf, n, "%s", reply && reply->type == REDIS_REPLY_STRING ? reply->str : "");
    freeReplyObject(reply);
    return buf;
}

static bool has_status(const char *id, const char *status)
{
    char buf[64];

    return !strcmp(bt_stack_status(&stack, id, buf, sizeof(buf)), status);
}

/* Counts the messages on a topic now. */
static bool count(const json_t *msg, void *arg)
{
    (void)msg;
    ++*(int *)arg;
    return false;
}

Test(children, a_child_of_another_teams_type_runs_on_that_teams_workers, .init = setup,
     .fini = teardown, .timeout = 90)
{
    pid_t a = bt_stack_worker(&stack, "team_a", NULL), b = team_b_worker();
    struct bt_stack_results r;
    char buf[256];
    int dead = 0;

    cr_assert_gt(a, 0);
    cr_assert_gt(b, 0);
    for (int i = 0; i < 6; i++) {
        char id[32];
        snprintf(id, sizeof(id), "order-%d", i);
        cr_assert_eq(
            bt_stack_start_wf(&stack, "order", id,
                              json_pack("{s:{s:b}}", "child_input", "fail", i == 5)),
            0);
    }
    /* the children report on results too: 6 parents + 6 children */
    bt_stack_results(&stack, &r, 12, 60000);
    cr_assert_eq(r.distinct, 12, "results: %d of 12", r.distinct);
    for (int i = 0; i < 6; i++) {
        char id[32], child[40];
        snprintf(id, sizeof(id), "order-%d", i);
        snprintf(child, sizeof(child), "%s/0", id); /* deterministic: parent/seq */
        const json_t *res = json_object_get(json_object_get(r.by_id, id), "result");
        cr_assert(has_status(id, "completed"), "%s", id);
        cr_assert_str_eq(field(child, "parent", buf, sizeof(buf)), id);
        cr_assert_str_eq(field(child, "queue", buf, sizeof(buf)), "team-b");
        cr_assert_str_eq(field(child, "type", buf, sizeof(buf)), "shipment");
        if (i < 5) {
            cr_assert(has_status(child, "completed"));
            cr_assert_str_eq(json_string_value(json_object_get(
                                 json_object_get(res, "child"), "run_by")),
                             "team-b");
        } else {
            /* the child's failure reaches the parent, which handles it */
            cr_assert(has_status(child, "failed"));
            cr_assert_str_eq(json_string_value(json_object_get(
                                 json_object_get(res, "child_failed"), "type")),
                             "OutOfStock");
        }
        json_t *started = bt_stack_history(&stack, id, NULL, "child_started");
        json_t *done = bt_stack_history(&stack, id, NULL,
                                        i < 5 ? "child_completed" : "child_failed");
        cr_assert_eq(json_array_size(started), 1);
        cr_assert_str_eq(
            json_string_value(json_object_get(json_array_get(started, 0), "child")),
            child);
        cr_assert_str_eq(
            json_string_value(json_object_get(json_array_get(started, 0), "queue")),
            "team-b");
        cr_assert_eq(json_array_size(done), 1);
        json_decref(started);
        json_decref(done);
    }
    /* team A's worker never saw a shipment start: no "unknown workflow type" */
    bt_stack_read_all(&stack, "dlq", 5000, count, &dead);
    cr_assert_eq(dead, 0, "%d dead letters", dead);
    json_decref(r.by_id);
    cr_assert_eq(bt_test_stop(a, BT_TEST_STOP_MS), 0, "a must exit cleanly");
    cr_assert_eq(bt_test_stop(b, BT_TEST_STOP_MS), 0, "b must exit cleanly");
}

static size_t records(const char *id, const char *ev)
{
    json_t *found = bt_stack_history(&stack, id, NULL, ev);
    size_t n = json_array_size(found);

    json_decref(found);
    return n;
}

/* Starts an order whose child packs and then waits for "ship". */
static void start_waiting(const char *id, const char *policy)
{
    char child[64];
    bool ok;

    snprintf(child, sizeof(child), "ship-%s", id);
    cr_assert_eq(bt_stack_start_wf(&stack, "order", id,
                                   json_pack("{s:{s:b}, s:s, s:s}", "child_input", "wait",
                                             1, "on_close", policy, "child_id", child)),
                 0);
    /* waiting: the pack step done and the signal wait in the child's journal */
    BT_TEST_WAIT_UNTIL(ok, records(child, "signal_wait") == 1, 30000);
    cr_assert(ok, "child %s never waited for its signal", child);
}

Test(children, closing_the_parent_cancels_terminates_or_abandons_its_child, .init = setup,
     .fini = teardown, .timeout = 120)
{
    pid_t a = bt_stack_worker(&stack, "team_a", NULL), b = team_b_worker();
    static const char *const policies[] = {"cancel", "terminate", "abandon"};
    char out[4096], buf[128];
    bool ok;

    cr_assert_gt(a, 0);
    cr_assert_gt(b, 0);
    for (int i = 0; i < 3; i++)
        start_waiting(policies[i], policies[i]);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(BT_STACK_BATON(&stack, out, "cancel", policies[i]), 0, "%s", out);
    for (int i = 0; i < 3; i++) {
        /* the parent's code saw the cancellation, ran its cleanup step and
         * gave up with "Cancelled": it is cancelled */
        BT_TEST_WAIT_UNTIL(ok, has_status(policies[i], "cancelled"), 30000);
        cr_assert(ok, "parent %s: %s", policies[i],
                  bt_stack_status(&stack, policies[i], buf, sizeof(buf)));
        cr_assert_eq(records(policies[i], "activity_completed"), 1,
                     "the parent's cleanup step");
        json_t *closed = bt_stack_history(&stack, policies[i], NULL, "child_closed");
        cr_assert_eq(json_array_size(closed), 1);
        cr_assert_str_eq(
            json_string_value(json_object_get(json_array_get(closed, 0), "policy")),
            policies[i]);
        json_decref(closed);
    }
    /* cancel: the child's code saw it and unpacked before failing */
    BT_TEST_WAIT_UNTIL(ok, has_status("ship-cancel", "cancelled"), 30000);
    cr_assert(ok, "ship-cancel: %s", bt_stack_status(&stack, "ship-cancel", buf, 128));
    cr_assert_eq(records("ship-cancel", "activity_completed"), 2,
                 "pack, then the unpack cleanup");
    /* terminate: stopped at once, no cleanup */
    BT_TEST_WAIT_UNTIL(ok, has_status("ship-terminate", "terminated"), 30000);
    cr_assert(ok, "ship-terminate: %s",
              bt_stack_status(&stack, "ship-terminate", buf, sizeof(buf)));
    /* abandon: it runs on; a signal written to the default queue's topic, as a
     * kcat user would, is forwarded to team B's topic and finishes it */
    cr_assert(has_status("ship-abandon", "running"));
    const char *ship =
        "{\"v\":1,\"type\":\"signal\",\"id\":\"ship-abandon\",\"name\":\"ship\"}";
    cr_assert_eq(bt_stack_produce(&stack, "events", "ship-abandon", ship, strlen(ship)),
                 0);
    BT_TEST_WAIT_UNTIL(ok, has_status("ship-abandon", "completed"), 30000);
    cr_assert(ok, "ship-abandon: %s",
              bt_stack_status(&stack, "ship-abandon", buf, sizeof(buf)));
    /* its late outcome is ignored by the finished parent, not dead-lettered */
    int dead = 0;
    bt_stack_read_all(&stack, "dlq", 5000, count, &dead);
    cr_assert_eq(dead, 0, "%d dead letters", dead);
    cr_assert_eq(bt_test_stop(a, BT_TEST_STOP_MS), 0, "a must exit cleanly");
    cr_assert_eq(bt_test_stop(b, BT_TEST_STOP_MS), 0, "b must exit cleanly");
}

Test(children, a_workflow_that_continues_as_new_keeps_its_history_bounded, .init = setup,
     .fini = teardown, .timeout = 120)
{
    pid_t w = bt_stack_worker(&stack, "looping", NULL), sch = bt_stack_scheduler(&stack);
    struct bt_stack_results r;
    char out[8192], buf[64];

    cr_assert_gt(w, 0);
    cr_assert_gt(sch, 0);
    cr_assert_eq(
        bt_stack_start_wf(&stack, "looper", "loop-1",
                          json_pack("{s:i, s:i, s:i}", "i", 0, "until", 30, "sum", 0)),
        0);
    bt_stack_results(&stack, &r, 1, 60000);
    cr_assert_eq(r.distinct, 1);
    const json_t *res = json_object_get(json_object_get(r.by_id, "loop-1"), "result");
    cr_assert_eq(json_integer_value(json_object_get(res, "runs")), 30);
    cr_assert_eq(json_integer_value(json_object_get(res, "sum")), 29 * 30 / 2);
    /* the journal and history hold the last run only: 2 steps, a few records */
    cr_assert_str_eq(field("loop-1", "run", buf, sizeof(buf)), "30");
    cr_assert_str_eq(field("loop-1", "base", buf, sizeof(buf)), "58");
    char key[300];
    redisReply *jl = bt_stack_redis(
        &stack, "HLEN %s", bt_stack_key(&stack, "loop-1", ":journal", key, sizeof(key)));
    cr_assert_eq(jl->integer, 2);
    freeReplyObject(jl);
    json_t *all = bt_stack_history(&stack, "loop-1", NULL, NULL);
    cr_assert_lt(json_array_size(all), 12, "%zu records in the last run",
                 json_array_size(all));
    json_decref(all);
    /* an earlier run's story is kept: it ended by continuing as new */
    json_t *cont = bt_stack_history(&stack, "loop-1", ":history:3", "continued_as_new");
    cr_assert_eq(json_array_size(cont), 1);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(cont, 0), "next_run")),
                 4);
    json_decref(cont);
    cr_assert_eq(BT_STACK_BATON(&stack, out, "history", "loop-1", "--run", "3"), 0, "%s",
                 out);
    cr_assert(strstr(out, "continued_as_new"), "%s", out);
    cr_assert_eq(BT_STACK_BATON(&stack, out, "history", "loop-1", "--run", "99"), 1);
    cr_assert(strstr(out, "no run 99"), "%s", out);
    json_decref(r.by_id);
    cr_assert_eq(bt_test_stop(w, BT_TEST_STOP_MS), 0, "w must exit cleanly");
    cr_assert_eq(bt_test_stop(sch, BT_TEST_STOP_MS), 0, "sch must exit cleanly");
}

Test(children, a_history_past_the_limit_fails_the_instance_pointing_to_continue_as_new,
     .init = setup, .fini = teardown, .timeout = 90)
{
    pid_t w = bt_stack_worker(&stack, "looping",
                              (const char *const[]){"--history-max", "40", NULL});
    struct bt_stack_results r;

    cr_assert_gt(w, 0);
    cr_assert_eq(bt_stack_start_wf(&stack, "forever", "endless", NULL), 0);
    cr_assert_eq(bt_stack_start_wf(&stack, "spinner", "spin", NULL), 0);
    bt_stack_results(&stack, &r, 2, 60000);
    cr_assert_eq(r.distinct, 2);
    const json_t *endless = json_object_get(r.by_id, "endless");
    const json_t *err = json_object_get(endless, "error");
    cr_assert_str_eq(json_string_value(json_object_get(endless, "status")), "failed");
    cr_assert_str_eq(json_string_value(json_object_get(err, "type")),
                     "HistoryLimitExceeded");
    cr_assert(
        strstr(json_string_value(json_object_get(err, "message")), "bt_continue_as_new"));
    json_t *all = bt_stack_history(&stack, "endless", NULL, NULL);
    cr_assert_leq(json_array_size(all), 40 + 4, "%zu records", json_array_size(all));
    json_decref(all);
    /* a run that continues without waiting on anything is stopped, not spun */
    const json_t *spin = json_object_get(r.by_id, "spin");
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(spin, "error"), "type")),
        "ContinueAsNewLoop");
    json_decref(r.by_id);
    cr_assert_eq(bt_test_stop(w, BT_TEST_STOP_MS), 0, "w must exit cleanly");
}
