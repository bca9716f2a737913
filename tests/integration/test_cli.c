/* The `baton` command as a shell user runs it: output, errors, exit codes. */
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

#define BATON(out, ...) BT_STACK_BATON(&stack, (out), __VA_ARGS__)

Test(cli, start_wait_prints_the_result_and_exits_zero, .init = setup, .fini = teardown,
     .timeout = 60)
{
    char out[8192];

    cr_assert_eq(
        BATON(out, "start", "chain3", "--id", "cli-1", "--input", "{\"v\":40}", "--wait"),
        0, "%s", out);
    cr_assert(strstr(out, "{\"v\":43}"), "the result is printed: %s", out);
    cr_assert_eq(BATON(out, "describe", "cli-1"), 0, "%s", out);
    cr_assert(strstr(out, "status:   completed") && strstr(out, "inc"), "%s", out);
    cr_assert_eq(BATON(out, "history", "cli-1"), 0);
    cr_assert(strstr(out, "activity_completed") && strstr(out, "finished"), "%s", out);
    cr_assert_eq(BATON(out, "history", "cli-1", "--json"), 0);
    cr_assert(strstr(out, "{\"ev\":\"started\""), "%s", out);
    cr_assert_eq(BATON(out, "list", "--status", "completed", "--type", "chain3"), 0);
    cr_assert(strstr(out, "cli-1"), "%s", out);
    cr_assert_eq(BATON(out, "stats"), 0, "%s", out);
    cr_assert(strstr(out, "chain3") && strstr(out, "finished in the last minute: 1") &&
                  strstr(out, "dead letters: 0"),
              "%s", out);
}

static bool serving(const char *queue)
{
    redisReply *r = bt_stack_redis(&stack, "EXISTS %s:serving:%s", stack.prefix, queue);
    bool yes = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;

    freeReplyObject(r);
    return yes;
}

/* A start that no worker will take is accepted: it waits on its queue's topic.
 * But the user is told. A start for a queue that a live worker serves gets no
 * warning. */
Test(cli, start_warns_when_no_live_worker_serves_the_queue, .init = setup,
     .fini = teardown, .timeout = 60)
{
    char out[8192];
    bool up;

    BT_TEST_WAIT_UNTIL(up, serving("default"), 30000);
    cr_assert(up, "the worker never said it serves the default queue");
    cr_assert_eq(BATON(out, "start", "chain3", "--id", "q-1", "--input", "{\"v\":1}"), 0,
                 "%s", out);
    cr_assert(!strstr(out, "no worker serves"), "%s", out);
    cr_assert_eq(BATON(out, "start", "chain3", "--id", "q-2", "--queue", "nobody"), 0,
                 "%s", out);
    cr_assert(strstr(out, "no worker serves queue \"nobody\"") &&
                  strstr(out, ".events.nobody"),
              "%s", out);
}

Test(cli, start_wait_exits_one_when_the_workflow_fails, .init = setup, .fini = teardown,
     .timeout = 60)
{
    char out[8192];

    cr_assert_eq(BATON(out, "start", "always_fails", "--id", "cli-f", "--input",
                       "{\"v\":1}", "--wait"),
                 1, "%s", out);
    cr_assert(strstr(out, "failed") && strstr(out, "Rejected"), "the error is shown: %s",
              out);
    cr_assert_eq(BATON(out, "list", "--status", "failed"), 0);
    cr_assert(strstr(out, "cli-f"), "%s", out);
}

Test(cli, errors_a_user_can_act_on, .init = setup, .fini = teardown, .timeout = 60)
{
    char out[8192];

    cr_assert_eq(BATON(out, "describe", "nobody"), 1);
    cr_assert(strstr(out, "no workflow instance \"nobody\""), "%s", out);
    cr_assert_eq(BATON(out, "signal", "nobody", "review"), 1);
    cr_assert(strstr(out, "no workflow instance"), "%s", out);
    cr_assert_eq(BATON(out, "start", "chain3", "--input", "{not json"), 2);
    cr_assert(strstr(out, "--input"), "%s", out);
    cr_assert_eq(BATON(out, "list", "--status", "sleeping"), 2);
    cr_assert_eq(BATON(out, "frobnicate"), 2);
    cr_assert_eq(BATON(out, "describe", "x", "--redis", "127.0.0.1:1"), 3);
    cr_assert(strstr(out, "cannot reach Redis"), "%s", out);
}

Test(cli, signal_and_cancel_reach_the_workflow, .init = setup, .fini = teardown,
     .timeout = 60)
{
    char out[8192], buf[32];
    bool ok;

    cr_assert_eq(BATON(out, "start", "await_review", "--id", "rv-1"), 0, "%s", out);
    cr_assert_eq(BATON(out, "start", "await_review", "--id", "rv-2"), 0, "%s", out);
    BT_TEST_WAIT_UNTIL(
        ok,
        !strcmp(bt_stack_status(&stack, "rv-1", buf, sizeof(buf)), "running") &&
            !strcmp(bt_stack_status(&stack, "rv-2", buf, sizeof(buf)), "running"),
        20000);
    cr_assert(ok);
    cr_assert_eq(BATON(out, "signal", "rv-1", "review", "--payload", "{\"ok\":true}"), 0,
                 "%s", out);
    cr_assert_eq(BATON(out, "cancel", "rv-2", "--reason", "customer left"), 0, "%s", out);
    BT_TEST_WAIT_UNTIL(
        ok,
        !strcmp(bt_stack_status(&stack, "rv-1", buf, sizeof(buf)), "completed") &&
            !strcmp(bt_stack_status(&stack, "rv-2", buf, sizeof(buf)), "completed"),
        20000);
    cr_assert(ok, "both must complete");
    redisReply *r1 = bt_stack_redis(&stack, "HGET %s:{rv-1} result", stack.prefix);
    redisReply *r2 = bt_stack_redis(&stack, "HGET %s:{rv-2} result", stack.prefix);
    cr_assert(strstr(r1->str, "\"ok\":true"), "the payload reached the code: %s",
              r1->str);
    cr_assert(strstr(r2->str, "cleaned_up"), "the cleanup step ran: %s", r2->str);
    freeReplyObject(r1);
    freeReplyObject(r2);
    cr_assert_eq(BATON(out, "signal", "rv-1", "review"), 1, "finished: %s", out);
    cr_assert(strstr(out, "already completed"), "%s", out);
}

/* Timers of instance id, in the timers set or leased. */
static int timers_of(const char *id)
{
    int n = 0;

    for (int leased = 0; leased < 2; leased++) {
        redisReply *reply = bt_stack_redis(&stack, "ZRANGE %s:timers%s 0 -1",
                                           stack.prefix, leased ? ":leased" : "");
        for (size_t i = 0; reply && i < reply->elements; i++) {
            const char *member = reply->element[i]->str;
            const char *bar = strrchr(member, '|');
            n += bar && !strcmp(bar + 1, id);
        }
        freeReplyObject(reply);
    }
    return n;
}

Test(cli, terminate_stops_an_instance_at_once, .init = setup, .fini = teardown,
     .timeout = 60)
{
    char out[8192], buf[32];
    bool ok;

    cr_assert_eq(
        BATON(out, "start", "await_review", "--id", "tm-1", "--execution-timeout", "300"),
        0, "%s", out);
    BT_TEST_WAIT_UNTIL(
        ok, !strcmp(bt_stack_status(&stack, "tm-1", buf, sizeof(buf)), "running"), 20000);
    cr_assert_eq(timers_of("tm-1"), 1, "its execution timeout is a timer");
    cr_assert_eq(BATON(out, "terminate", "tm-1"), 0, "%s", out);
    BT_TEST_WAIT_UNTIL(
        ok, !strcmp(bt_stack_status(&stack, "tm-1", buf, sizeof(buf)), "terminated"),
        20000);
    cr_assert(ok, "status is %s", buf);
    cr_assert_eq(timers_of("tm-1"), 0, "a finished instance leaves no timer to fire");
}

Test(cli, history_follow_streams_until_the_instance_finishes, .init = setup,
     .fini = teardown, .timeout = 60)
{
    char out[8192], log[400], buf[32];
    bool ok;

    cr_assert_eq(BATON(out, "start", "await_review", "--id", "fw-1"), 0, "%s", out);
    BT_TEST_WAIT_UNTIL(
        ok, !strcmp(bt_stack_status(&stack, "fw-1", buf, sizeof(buf)), "running"), 20000);
    snprintf(log, sizeof(log), "%s/follow.out", stack.redis.dir);
    pid_t follow = bt_test_spawn(
        (const char *const[]){BT_BIN_DIR "/baton", "history", "fw-1", "--follow", NULL},
        stack.envp, log);
    cr_assert_eq(bt_test_wait(follow, 300), -1, "--follow keeps running while it waits");
    cr_assert_eq(BATON(out, "signal", "fw-1", "review", "--payload", "7"), 0, "%s", out);
    cr_assert_eq(bt_test_wait(follow, 20000), 0,
                 "--follow ends when the instance finishes");
    FILE *f = fopen(log, "r");
    size_t n = fread(out, 1, sizeof(out) - 1, f);
    out[n] = '\0';
    fclose(f);
    cr_assert(strstr(out, "signal_wait") && strstr(out, "signal_received") &&
                  strstr(out, "finished"),
              "%s", out);
}

/* The report: replay-check could not load a plugin whose activities
 * call the SDK (undefined symbol bt_act_attempt). It loads the repository's
 * own examples, each with the symbols from libbaton, as the worker does. */
Test(cli, replay_check_loads_every_plugin_the_worker_loads, .init = setup,
     .fini = teardown, .timeout = 60)
{
    char out[8192];

    cr_assert_eq(BATON(out, "replay-check", "--plugin", BT_PLUGIN_DIR "/campaigns.so",
                       "--plugin", BT_PLUGIN_DIR "/registration.so", "--plugin",
                       BT_PLUGIN_DIR "/flows.so"),
                 0, "%s", out);
    cr_assert(strstr(out, "replay-check: 0 instances replayed"), "%s", out);
    cr_assert(!strstr(out, "undefined symbol"), "%s", out);
}
