/* `baton start` as Temporal's: an id that runs is refused unless
 * --id-conflict says otherwise, a finished one gets a new run unless
 * --id-reuse reject, a type no live worker runs is refused at once, and an
 * input over the payload limit is refused before anything is sent. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stack.h"

static struct bt_stack stack;
static pid_t worker;

static void setup(void)
{
    bool ok;

    cr_assert_eq(bt_stack_start(&stack, NULL), 0, "cannot start the stack");
    worker = bt_stack_worker(&stack, "flows", NULL);
    cr_assert_gt(worker, 0);
    BT_TEST_WAIT_UNTIL(ok, bt_stack_type_known(&stack, "chain3"), 30000);
    cr_assert(ok, "the worker never registered its workflow types");
}

static void teardown(void)
{
    bt_test_kill9(worker);
    bt_stack_stop(&stack);
}

#define BATON(out, ...) BT_STACK_BATON(&stack, (out), __VA_ARGS__)

static long long field_int(const char *id, const char *name)
{
    redisReply *r = bt_stack_redis(&stack, "HGET %s:{%s} %s", stack.prefix, id, name);
    long long v = r && r->type == REDIS_REPLY_STRING ? atoll(r->str) : -1;

    freeReplyObject(r);
    return v;
}

/* Whether id is in status on run, read in one call: two reads could see the
 * status of one run and the number of the next. */
static bool is(const char *id, const char *status, long long run)
{
    redisReply *r = bt_stack_redis(&stack, "HMGET %s:{%s} status run", stack.prefix, id);
    bool yes = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
               r->element[0]->type == REDIS_REPLY_STRING &&
               r->element[1]->type == REDIS_REPLY_STRING &&
               !strcmp(r->element[0]->str, status) && atoll(r->element[1]->str) == run;

    freeReplyObject(r);
    return yes;
}

Test(cli_start, a_running_id_is_refused_used_or_terminated_as_asked, .init = setup,
     .fini = teardown, .timeout = 90)
{
    char out[8192];
    bool ok;

    cr_assert_eq(BATON(out, "start", "await_review", "--id", "c-1"), 0, "%s", out);
    BT_TEST_WAIT_UNTIL(ok, is("c-1", "running", 1), 20000);
    cr_assert(ok);
    cr_assert_eq(BATON(out, "start", "await_review", "--id", "c-1"), 4, "%s", out);
    cr_assert(strstr(out, "already running") && strstr(out, "--id-conflict"), "%s", out);
    cr_assert_eq(BATON(out, "start", "await_review", "--id=c-1", "--id-conflict=fail"),
                 4);
    cr_assert_eq(BATON(out, "start", "await_review", "--id", "c-1", "--id-conflict",
                       "use-existing"),
                 0, "%s", out);
    cr_assert(strstr(out, "c-1\n") && strstr(out, "using it"), "%s", out);
    cr_assert(!strstr(out, "started"), "nothing is started: %s", out);
    cr_assert_eq(BATON(out, "start", "await_review", "--id", "c-1", "--id-conflict",
                       "terminate-existing"),
                 0, "%s", out);
    BT_TEST_WAIT_UNTIL(ok, is("c-1", "running", 2), 20000);
    cr_assert(ok, "a new run follows the terminated one: status run %lld",
              field_int("c-1", "run"));
    json_t *ended = bt_stack_history(&stack, "c-1", ":history:1", "finished");
    cr_assert_eq(json_array_size(ended), 1, "run 1 kept, finished (terminated)");
    json_decref(ended);
    cr_assert_eq(BATON(out, "signal", "c-1", "review", "--payload", "2"), 0, "%s", out);
    BT_TEST_WAIT_UNTIL(ok, is("c-1", "completed", 2), 20000);
    cr_assert(ok, "the new run completes");
}

Test(cli_start, a_finished_id_runs_again_unless_reuse_is_rejected, .init = setup,
     .fini = teardown, .timeout = 90)
{
    char out[8192];

    cr_assert_eq(
        BATON(out, "start", "chain3", "--id", "r-1", "--input", "{\"v\":1}", "--wait"), 0,
        "%s", out);
    cr_assert(strstr(out, "{\"v\":4}"), "%s", out);
    cr_assert_eq(BATON(out, "start", "chain3", "--id", "r-1", "--input", "{\"v\":1}",
                       "--id-reuse", "reject"),
                 4, "%s", out);
    cr_assert(strstr(out, "already ran (completed, run 1)"), "%s", out);
    cr_assert_eq(
        BATON(out, "start", "chain3", "--id", "r-1", "--input", "{\"v\":10}", "--wait"),
        0, "%s", out);
    cr_assert(strstr(out, "{\"v\":13}"), "the new run's own result: %s", out);
    cr_assert(strstr(out, "run 2 follows"), "%s", out);
    cr_assert_eq(field_int("r-1", "run"), 2);
    cr_assert_eq(BATON(out, "describe", "r-1"), 0);
    cr_assert(strstr(out, "input:    {\"v\":10}") && strstr(out, "run:      2"), "%s",
              out);
}

/* A start that replaces a run, delivered twice: the second finds another
 * run and is dropped, so nothing runs twice. */
Test(cli_start, a_redelivered_start_of_a_new_run_does_not_run_again, .init = setup,
     .fini = teardown, .timeout = 90)
{
    char out[8192];
    static const char start2[] =
        "{\"v\":1,\"type\":\"start\",\"id\":\"d-1\",\"workflow\":"
        "\"chain3\",\"input\":{\"v\":0},\"replaces_run\":1}";
    static const char start3[] =
        "{\"v\":1,\"type\":\"start\",\"id\":\"d-1\",\"workflow\":"
        "\"chain3\",\"input\":{\"v\":0},\"replaces_run\":2}";
    bool ok;

    cr_assert_eq(
        BATON(out, "start", "chain3", "--id", "d-1", "--input", "{\"v\":0}", "--wait"), 0,
        "%s", out);
    cr_assert_eq(bt_stack_produce(&stack, "events", "d-1", start2, strlen(start2)), 0);
    cr_assert_eq(bt_stack_produce(&stack, "events", "d-1", start2, strlen(start2)), 0);
    BT_TEST_WAIT_UNTIL(ok, is("d-1", "completed", 2), 20000);
    cr_assert(ok);
    cr_assert_eq(bt_stack_produce(&stack, "events", "d-1", start3, strlen(start3)), 0);
    BT_TEST_WAIT_UNTIL(ok, is("d-1", "completed", 3), 20000);
    cr_assert(ok, "run %lld", field_int("d-1", "run"));
    json_t *started = bt_stack_history(&stack, "d-1", ":history:2", "started");
    cr_assert_eq(json_array_size(started), 1, "run 2 started once");
    json_decref(started);
}

Test(cli_start, an_unknown_type_is_refused_at_once, .init = setup, .fini = teardown,
     .timeout = 90)
{
    char out[8192], buf[32];

    cr_assert_eq(BATON(out, "start", "chian3", "--id", "t-1"), 1, "%s", out);
    cr_assert(strstr(out, "no live worker of queue \"default\" runs workflow type "
                          "\"chian3\"") &&
                  strstr(out, "chain3"),
              "the message names the types that run: %s", out);
    cr_assert(!strstr(out, "started"), "%s", out);
    cr_assert_str_eq(bt_stack_status(&stack, "t-1", buf, sizeof(buf)), "");
    /* a scheduled start may come before its deploy: warned only */
    cr_assert_eq(BATON(out, "start", "chian3", "--id", "t-2", "--at", "+1h"), 0, "%s",
                 out);
    cr_assert(strstr(out, "warning") && strstr(out, "chian3"), "%s", out);
    /* no live worker says what it runs on this queue: the serving warning */
    cr_assert_eq(BATON(out, "start", "chian3", "--id", "t-3", "--queue", "nobody"), 0,
                 "%s", out);
    cr_assert(strstr(out, "no worker serves queue \"nobody\""), "%s", out);
    /* a queue no Kafka topic can be named after: refused, with the rule */
    cr_assert_eq(BATON(out, "start", "chain3", "--id", "t-4", "--queue", "a b"), 2, "%s",
                 out);
    cr_assert(strstr(out, "queue \"a b\"") && strstr(out, "letters, digits"), "%s", out);
    cr_assert_eq(BATON(out, "schedule", "add", "s-1", "--cron", "* * * * *", "--workflow",
                       "chain3", "--queue", "a/b"),
                 2, "%s", out);
    cr_assert(strstr(out, "queue \"a/b\""), "%s", out);
}

Test(cli_start, an_input_over_the_payload_limit_is_refused_before_sending, .init = setup,
     .fini = teardown, .timeout = 90)
{
    char out[8192], path[400];
    FILE *f;

    snprintf(path, sizeof(path), "%s/big.json", stack.redis.dir);
    f = fopen(path, "w");
    cr_assert(f);
    fputc('"', f);
    for (int i = 0; i < 1000000; i++)
        fputc('x', f);
    fputc('"', f);
    fclose(f);
    char at_path[420];
    snprintf(at_path, sizeof(at_path), "@%s", path);
    cr_assert_eq(BATON(out, "start", "chain3", "--id", "p-1", "--input", at_path), 1,
                 "%s", out);
    cr_assert(strstr(out, "over the limit of 900000 bytes") && strstr(out, "max-payload"),
              "%s", out);
    cr_assert_eq(
        BATON(out, "start", "chain3", "--id", "p-2", "--input", at_path, "--at", "+1h"),
        1, "%s", out);
    redisReply *r = bt_stack_redis(&stack, "EXISTS %s:schedule:p-2", stack.prefix);
    cr_assert_eq(r->integer, 0, "nothing scheduled");
    freeReplyObject(r);
}

/* signal-with-start: a new id is started and gets the signal after its start;
 * a running one only gets the signal (no second start); a finished one gets
 * a new run with the signal. */
Test(cli_start, signal_with_start_starts_when_needed_and_signals_always, .init = setup,
     .fini = teardown, .timeout = 90)
{
    char out[8192];
    bool ok;

    cr_assert_eq(BATON(out, "signal-with-start", "await_review", "--id", "s-1",
                       "--signal", "review", "--signal-payload", "{\"ok\":1}", "--wait"),
                 0, "%s", out);
    cr_assert(strstr(out, "{\"review\": {\"ok\": 1}}") ||
                  strstr(out, "{\"review\":{\"ok\":1}}"),
              "the new instance got the signal: %s", out);
    cr_assert_eq(field_int("s-1", "run"), 1);

    cr_assert_eq(BATON(out, "start", "await_review", "--id", "s-2"), 0, "%s", out);
    BT_TEST_WAIT_UNTIL(ok, is("s-2", "running", 1), 20000);
    cr_assert(ok, "s-2 runs");
    cr_assert_eq(BATON(out, "signal-with-start", "await_review", "--id", "s-2",
                       "--signal", "review", "--signal-payload", "2", "--wait"),
                 0, "%s", out);
    cr_assert(strstr(out, "using it"), "the running one is used: %s", out);
    cr_assert(strstr(out, "2}"), "%s", out);
    cr_assert_eq(field_int("s-2", "run"), 1, "no second start");

    cr_assert_eq(BATON(out, "signal-with-start", "await_review", "--id", "s-1",
                       "--signal", "review", "--signal-payload", "3", "--wait"),
                 0, "%s", out);
    cr_assert(strstr(out, "run 2 follows"), "%s", out);
    cr_assert_eq(field_int("s-1", "run"), 2);
    cr_assert_eq(BATON(out, "signal-with-start", "await_review", "--id", "s-3"), 2,
                 "--signal is required: %s", out);
}

/* Batch operations: 500 waiting instances and 20 of another type; without
 * --yes nothing is sent (not a terminal); terminate by query ends exactly the
 * 500; a signal by query reaches the 10 running ones it matches; a bad query
 * and an ID with a query are refused. */
Test(cli_start, terminate_and_signal_by_query, .init = setup, .fini = teardown,
     .timeout = 180)
{
    char out[8192], id[32];
    bool ok;
    int done = 0;

    for (int i = 0; i < 500; i++) {
        snprintf(id, sizeof(id), "q-%d", i);
        cr_assert_eq(bt_stack_start_wf(&stack, "await_review", id, NULL), 0);
    }
    for (int i = 0; i < 20; i++) {
        snprintf(id, sizeof(id), "other-%d", i);
        cr_assert_eq(bt_stack_start_wf(&stack, "legacy1", id, NULL), 0);
    }
    BT_TEST_WAIT_UNTIL(ok, is("q-499", "running", 1) && is("q-0", "running", 1), 60000);
    cr_assert(ok, "the 500 run");

    cr_assert_eq(
        BATON(out, "terminate", "--query", "status=running AND type=await_review"), 2,
        "%s", out);
    cr_assert(strstr(out, "500 instances match; pass --yes"), "%s", out);
    cr_assert(is("q-7", "running", 1), "nothing sent without --yes");
    cr_assert_eq(BATON(out, "terminate", "--query",
                       "type=await_review AND status=running", "--yes", "--reason",
                       "batch"),
                 0, "%s", out);
    cr_assert(strstr(out, "terminate: 500 instances"), "%s", out);
    for (int64_t deadline = bt_test_now_ms() + 60000;
         done < 500 && bt_test_now_ms() < deadline;) {
        done = 0;
        for (int i = 0; i < 500; i++) {
            snprintf(id, sizeof(id), "q-%d", i);
            done += is(id, "terminated", 1);
        }
        if (done < 500)
            bt_test_sleep_ms(100);
    }
    cr_assert_eq(done, 500, "terminated");
    for (int i = 0; i < 20; i++) {
        char buf[32];
        snprintf(id, sizeof(id), "other-%d", i);
        cr_assert_str_neq(bt_stack_status(&stack, id, buf, sizeof(buf)), "terminated",
                          "another type was left alone");
    }
    /* a signal by query: the terminated ones match no more, 10 new ones do */
    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof(id), "sig-%d", i);
        cr_assert_eq(bt_stack_start_wf(&stack, "await_review", id, NULL), 0);
    }
    BT_TEST_WAIT_UNTIL(ok, is("sig-9", "running", 1) && is("sig-0", "running", 1), 30000);
    cr_assert(ok, "the 10 run");
    cr_assert_eq(BATON(out, "signal", "review", "--query",
                       "status=running AND type=await_review", "--payload", "\"ok\"",
                       "--yes"),
                 0, "%s", out);
    cr_assert(strstr(out, "signal: 10 instances"), "%s", out);
    BT_TEST_WAIT_UNTIL(ok, is("sig-0", "completed", 1) && is("sig-9", "completed", 1),
                       30000);
    cr_assert(ok, "the signal reached them");
    cr_assert_eq(BATON(out, "terminate", "--query", "colour~red", "--yes"), 2, "%s", out);
    cr_assert_eq(BATON(out, "terminate", "--query", "started=2026-01-01", "--yes"), 2,
                 "%s", out);
    /* a search attribute no instance has matches none */
    cr_assert_eq(BATON(out, "terminate", "--query", "colour=red", "--yes"), 0, "%s", out);
    cr_assert(strstr(out, "no live instance matches"), "%s", out);
    cr_assert_eq(BATON(out, "terminate", "q-1", "--query", "status=running"), 2, "%s",
                 out);
}
