/* Plugin code that crashes its worker (tests/plugins/crashing.c). The test
 * restarts the worker whenever it dies, as systemd or Kubernetes would:
 * before, the message that crashed it came again to the next worker, which
 * died the same way, for ever, and nothing behind it on its partition ran.
 * Now an activity attempt lost to crashes fails (WorkerLost) and workflow
 * code that crashed workers twice blocks its instance; the rest flows. An
 * activity that hangs past its timeout is named, and a worker whose every
 * activity thread hangs says so on /healthz. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "scrape.h"
#include "stack.h"

#define NORMAL 10

static struct bt_stack stack;

static void setup(void)
{
    cr_assert_eq(bt_stack_start(&stack, NULL), 0, "cannot start the stack");
    bt_stack_setenv(&stack, 0, "BT_TEST_CRASH=1");
}

static void teardown(void)
{
    bt_stack_stop(&stack);
}

/* The worker, started again each time it dies, and how it died. */
struct supervised {
    pid_t pid;
    int crashes; /* deaths by a signal */
    int exits;   /* other deaths */
};

static void start_worker(struct supervised *w)
{
    w->pid = bt_stack_worker(&stack, "crashing", NULL);
    cr_assert_gt(w->pid, 0);
}

/* Restarts the worker whenever it dies until want distinct results are in
 * (r filled) or timeout_ms passed. */
static void supervise(struct supervised *w, struct bt_stack_results *r, int want,
                      int timeout_ms)
{
    int64_t deadline = bt_clock_now_ms() + timeout_ms;

    memset(r, 0, sizeof(*r));
    while (bt_clock_now_ms() < deadline) {
        int status = bt_test_wait(w->pid, 300);
        if (status >= 0) {
            if (status > 128)
                w->crashes++;
            else
                w->exits++;
            start_worker(w);
        }
        json_decref(r->by_id);
        bt_stack_results(&stack, r, want, 300);
        if (r->distinct >= want)
            return;
    }
}

static void start_all(const char *prefix, const char *crash_id, const char *where)
{
    cr_assert_eq(bt_stack_start_wf(&stack, "crashing", crash_id,
                                   json_pack("{s:s}", "crash", where)),
                 0);
    for (int i = 0; i < NORMAL; i++) {
        char id[64];
        snprintf(id, sizeof(id), "%s-%d", prefix, i);
        cr_assert_eq(bt_stack_start_wf(&stack, "crashing", id, json_object()), 0);
    }
}

static void expect_normal_completed(const struct bt_stack_results *r, const char *prefix)
{
    for (int i = 0; i < NORMAL; i++) {
        char id[64];
        snprintf(id, sizeof(id), "%s-%d", prefix, i);
        const json_t *res = json_object_get(r->by_id, id);
        cr_expect_str_eq(json_string_value(json_object_get(res, "status")), "completed",
                         "%s did not complete", id);
    }
}

Test(crashes, an_activity_that_crashes_its_worker_fails_its_attempt_and_the_rest_flow,
     .init = setup, .fini = teardown, .timeout = 180)
{
    struct supervised w = {0};
    pid_t scheduler =
        bt_stack_scheduler(&stack); /* re-sends a dead worker's eager tasks */
    struct bt_stack_results r;
    const json_t *res;

    cr_assert_gt(scheduler, 0);
    start_worker(&w);
    start_all("ca", "ca-crash", "activity");
    supervise(&w, &r, NORMAL + 1, 150000);
    cr_assert_eq(r.distinct, NORMAL + 1, "results: %d of %d (worker crashes: %d)",
                 r.distinct, NORMAL + 1, w.crashes);
    expect_normal_completed(&r, "ca");
    res = json_object_get(r.by_id, "ca-crash");
    cr_expect_str_eq(json_string_value(json_object_get(res, "status")), "failed");
    cr_expect_str_eq(
        json_string_value(json_object_get(json_object_get(res, "error"), "type")),
        "WorkerLost", "the attempt lost to crashes fails it");
    /* its one attempt: run eagerly, then from Kafka by a worker that may
     * have fetched it first (unmarked) and by two marked takers */
    cr_expect(w.crashes >= 2 && w.crashes <= 4, "worker crashes: %d (2 to 4)", w.crashes);
    cr_expect_eq(w.exits, 0);
    cr_expect_geq(bt_test_count_lines_with(stack.log, "crashed in activity code"),
                  (size_t)w.crashes, "each crash is logged with its activity");
    json_decref(r.by_id);
    cr_expect_eq(bt_test_stop(w.pid, BT_TEST_STOP_MS), 0);
    cr_expect_eq(bt_test_stop(scheduler, BT_TEST_STOP_MS), 0);
}

static bool blocked_for_crashes(const char *id)
{
    char key[300], status[32];
    redisReply *reply;
    bool yes;

    if (strcmp(bt_stack_status(&stack, id, status, sizeof(status)), "blocked"))
        return false;
    reply = bt_stack_redis(&stack, "HGET %s error",
                           bt_stack_key(&stack, id, "", key, sizeof(key)));
    yes = reply && reply->type == REDIS_REPLY_STRING &&
          strstr(reply->str, "\"WorkflowCrashed\"");
    freeReplyObject(reply);
    return yes;
}

/* The scheduler (it re-sends a dead worker's eager tasks) and the worker,
 * restarted whenever it dies, until the NORMAL instances beside the one
 * whose workflow code does `where` (tests/plugins/crashing.c) completed and
 * that one is blocked for its crashes. */
static pid_t run_until_blocked(struct supervised *w, const char *prefix, const char *id,
                               const char *where)
{
    pid_t scheduler = bt_stack_scheduler(&stack);
    struct bt_stack_results r;
    bool ok;

    cr_assert_gt(scheduler, 0);
    start_worker(w);
    start_all(prefix, id, where);
    supervise(w, &r, NORMAL, 150000);
    cr_assert_eq(r.distinct, NORMAL, "results: %d of %d (worker crashes %d, exits %d)",
                 r.distinct, NORMAL, w->crashes, w->exits);
    expect_normal_completed(&r, prefix);
    json_decref(r.by_id);
    BT_TEST_WAIT_UNTIL(ok, blocked_for_crashes(id), 60000);
    cr_assert(ok, "%s is not blocked for its crashes", id);
    return scheduler;
}

static void stop_all(struct supervised *w, pid_t scheduler)
{
    cr_expect_eq(bt_test_stop(w->pid, BT_TEST_STOP_MS), 0);
    cr_expect_eq(bt_test_stop(scheduler, BT_TEST_STOP_MS), 0);
}

Test(crashes, workflow_code_that_crashes_its_worker_blocks_its_instance_until_unblocked,
     .init = setup, .fini = teardown, .timeout = 240)
{
    struct supervised w = {0};
    pid_t scheduler = run_until_blocked(&w, "cw", "cw-crash", "workflow");
    struct bt_stack_results r;
    json_t *blocked;
    char out[1024];

    cr_expect_eq(w.crashes, 2, "worker crashes: %d (its code runs twice)", w.crashes);
    cr_expect_eq(w.exits, 0);
    cr_expect_geq(bt_test_count_lines_with(stack.log, "crashed in workflow code"), 2);
    blocked = bt_stack_history(&stack, "cw-crash", ":history", "blocked");
    cr_expect_eq(json_array_size(blocked), 1);
    json_decref(blocked);

    /* a later event runs no code: still blocked, no crash */
    cr_assert_eq(BT_STACK_BATON(&stack, out, "signal", "cw-crash", "poke"), 0, "%s", out);
    supervise(&w, &r, NORMAL + 1, 3000);
    json_decref(r.by_id);
    cr_expect_eq(w.crashes, 2, "a signal to the blocked instance ran its code");

    /* the fixed deploy, then `baton unblock`: it runs and completes */
    cr_assert_eq(bt_test_stop(w.pid, BT_TEST_STOP_MS), 0);
    bt_stack_setenv(&stack, 0, NULL);
    start_worker(&w);
    cr_assert_eq(BT_STACK_BATON(&stack, out, "unblock", "cw-crash"), 0, "%s", out);
    supervise(&w, &r, NORMAL + 1, 60000);
    cr_assert_eq(r.distinct, NORMAL + 1, "cw-crash has no result after the unblock");
    cr_expect_str_eq(json_string_value(
                         json_object_get(json_object_get(r.by_id, "cw-crash"), "status")),
                     "completed");
    cr_expect_eq(w.crashes, 2);
    json_decref(r.by_id);
    stop_all(&w, scheduler);
}

Test(crashes, workflow_code_that_loops_is_aborted_and_its_instance_blocked, .init = setup,
     .fini = teardown, .timeout = 240)
{
    struct supervised w = {0};
    pid_t scheduler = run_until_blocked(&w, "cl", "cl-loop", "loop");
    char key[300];
    redisReply *reply;

    cr_expect_eq(w.crashes, 2, "worker aborts: %d (two hangs)", w.crashes);
    cr_expect_eq(
        bt_test_count_lines_with(stack.log, "without returning: the worker aborts"), 2);
    reply = bt_stack_redis(&stack, "HGET %s last",
                           bt_stack_key(&stack, "cl-loop", ":crashes", key, sizeof(key)));
    cr_expect(reply && reply->type == REDIS_REPLY_STRING &&
                  !strncmp(reply->str, "a hang", 6),
              "the record says a hang: %s", reply && reply->str ? reply->str : "none");
    freeReplyObject(reply);
    stop_all(&w, scheduler);
}

Test(crashes, workflow_code_that_calls_exit_blocks_its_instance, .init = setup,
     .fini = teardown, .timeout = 240)
{
    struct supervised w = {0};
    pid_t scheduler = run_until_blocked(&w, "ce", "ce-exit", "exit");

    cr_expect_eq(w.exits, 2, "worker exits: %d", w.exits);
    cr_expect_eq(w.crashes, 0);
    cr_expect_eq(bt_test_count_lines_with(stack.log, "workflow code called exit()"), 2);
    stop_all(&w, scheduler);
}

static bool healthz_says(int port, int want_status, const char *want_text)
{
    int status = 0;
    char *body = bt_test_http_get(port, "/healthz", &status);
    bool yes = body && status == want_status && strstr(body, want_text);

    free(body);
    return yes;
}

Test(crashes, an_activity_that_hangs_past_its_timeout_is_named_and_the_worker_says_stuck,
     .init = setup, .fini = teardown, .timeout = 120)
{
    pid_t scheduler = bt_stack_scheduler(&stack); /* the timeout's timer */
    struct bt_stack_results r;
    char mport[16];
    int port, unused;
    pid_t worker;
    bool ok;

    cr_assert_gt(scheduler, 0);
    cr_assert_eq(bt_test_free_ports(&port, &unused), 0);
    snprintf(mport, sizeof(mport), "%d", port);
    worker = bt_stack_worker(
        &stack, "crashing",
        (const char *const[]){"--concurrency", "1", "--metrics-port", mport, NULL});
    cr_assert_gt(worker, 0);
    BT_TEST_WAIT_UNTIL(ok, healthz_says(port, 200, "ok"), 30000);
    cr_assert(ok, "/healthz does not answer ok at first");
    cr_assert_eq(bt_stack_start_wf(&stack, "crashing", "ch-hang",
                                   json_pack("{s:s}", "crash", "hang")),
                 0);
    /* its one attempt times out after 1 s: the instance fails */
    bt_stack_results(&stack, &r, 1, 30000);
    cr_assert_eq(r.distinct, 1, "no result for ch-hang");
    cr_expect_str_eq(
        json_string_value(json_object_get(
            json_object_get(json_object_get(r.by_id, "ch-hang"), "error"), "type")),
        "StartToCloseTimeout");
    json_decref(r.by_id);
    /* 10 s past the timeout: named, counted, and the only thread is held */
    BT_TEST_WAIT_UNTIL(ok, healthz_says(port, 503, "every activity thread"), 30000);
    cr_assert(ok, "/healthz does not say the worker is stuck");
    cr_expect_eq(
        bt_test_count_lines_with(stack.log, "activity still running past its timeout"),
        1);
    int status = 0;
    char *metrics = bt_test_http_get(port, "/metrics", &status);
    cr_expect(metrics && strstr(metrics, "baton_activity_threads_overdue 1"), "%s",
              metrics ? "no baton_activity_threads_overdue 1" : "no /metrics");
    free(metrics);
    bt_test_kill9(worker); /* its stop would wait for the thread */
    cr_expect_eq(bt_test_stop(scheduler, BT_TEST_STOP_MS), 0);
}

#define BAD 12

static bool all_bad_blocked(void)
{
    for (int i = 0; i < BAD; i++) {
        char id[64];
        snprintf(id, sizeof(id), "cb-bad-%d", i);
        if (!blocked_for_crashes(id))
            return false;
    }
    return true;
}

/* A deploy whose workflow code crashes on every instance of a type: each
 * instance used to cost two crashes before it was blocked (24 here, and the
 * instances of other types beside them waited through every restart). Three
 * instances crashed stop the type: the rest are blocked without running,
 * and after the fixed deploy one unblock by query resumes them all. */
Test(crashes, a_deploy_that_crashes_every_instance_of_a_type_stops_the_type,
     .init = setup, .fini = teardown, .timeout = 300)
{
    struct supervised w = {0};
    pid_t scheduler = bt_stack_scheduler(&stack);
    struct bt_stack_results r;
    char out[2048];
    bool ok;

    cr_assert_gt(scheduler, 0);
    start_worker(&w);
    for (int i = 0; i < BAD; i++) {
        char id[64];
        snprintf(id, sizeof(id), "cb-bad-%d", i);
        cr_assert_eq(bt_stack_start_wf(&stack, "crashing_all", id, json_object()), 0);
    }
    start_all("cb", "cb-one", "none");
    supervise(&w, &r, NORMAL + 1, 150000);
    cr_assert_eq(r.distinct, NORMAL + 1, "results: %d of %d (worker crashes %d)",
                 r.distinct, NORMAL + 1, w.crashes);
    expect_normal_completed(&r, "cb");
    json_decref(r.by_id);
    BT_TEST_WAIT_UNTIL(ok, all_bad_blocked(), 60000);
    cr_assert(ok, "not every instance of the crashing type is blocked");
    /* two instances crash twice each, the third once: then the type stops */
    cr_expect(w.crashes >= 3 && w.crashes <= 6, "worker crashes: %d (3 to 6)", w.crashes);
    cr_expect_eq(bt_test_count_lines_with(stack.log, "the type is stopped"), 1);
    cr_expect_geq(
        bt_test_count_lines_with(stack.log, "workflow type stopped for its crashes"),
        (size_t)(BAD - 3));

    /* the fixed deploy, then one unblock for them all */
    cr_assert_eq(bt_test_stop(w.pid, BT_TEST_STOP_MS), 0);
    bt_stack_setenv(&stack, 0, NULL);
    start_worker(&w);
    cr_assert_eq(BT_STACK_BATON(&stack, out, "unblock", "--query",
                                "status=blocked AND type=crashing_all", "--yes"),
                 0, "%s", out);
    cr_expect(strstr(out, "unblock: 12 instances"), "%s", out);
    supervise(&w, &r, NORMAL + 1 + BAD, 90000);
    cr_assert_eq(r.distinct, NORMAL + 1 + BAD, "results after the unblock: %d of %d",
                 r.distinct, NORMAL + 1 + BAD);
    for (int i = 0; i < BAD; i++) {
        char id[64];
        snprintf(id, sizeof(id), "cb-bad-%d", i);
        cr_expect_str_eq(
            json_string_value(json_object_get(json_object_get(r.by_id, id), "status")),
            "completed", "%s", id);
    }
    json_decref(r.by_id);
    stop_all(&w, scheduler);
}
