/* What an instance costs Redis, measured on the real engine: MEMORY USAGE
 * summed over every key of an instance, plus its share of the indexes it is
 * in (idx:all, its status index, the retention set; the outbox index once
 * the sweep dropped it), for
 * three-step workflows finished and running. The bounds are issue 14's:
 * a finished three-step instance in 1.5 KB until its retention ends, a
 * running one no more than it needs. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stack.h"

#define N              200 /* instances: the indexes leave their small encoding */
#define FINISHED_BOUND 1536
#define RUNNING_BOUND  1024

static struct bt_stack stack;

static void setup(void)
{
    cr_assert_eq(bt_stack_start(&stack, NULL), 0, "cannot start the stack");
}

static void teardown(void)
{
    bt_stack_stop(&stack);
}

TestSuite(memory, .init = setup, .fini = teardown, .timeout = 180);

static long long usage(const char *key)
{
    redisReply *reply = bt_stack_redis(&stack, "MEMORY USAGE %s", key);
    long long n = reply && reply->type == REDIS_REPLY_INTEGER ? reply->integer : 0;

    freeReplyObject(reply);
    return n;
}

/* MEMORY USAGE of every key of instance id, tombstone aside. */
static long long instance_bytes(const char *id)
{
    redisReply *reply = bt_stack_redis(&stack, "KEYS %s:{%s}*", stack.prefix, id);
    long long n = 0;

    cr_assert(reply && reply->type == REDIS_REPLY_ARRAY);
    for (size_t i = 0; i < reply->elements; i++) {
        n += usage(reply->element[i]->str);
        if (getenv("BT_TEST_MEMORY_KEYS"))
            fprintf(stderr, "memory: %s %lld\n", reply->element[i]->str,
                    usage(reply->element[i]->str));
    }
    freeReplyObject(reply);
    return n;
}

/* The global sorted sets, summed: what N instances add to them is their
 * share (the sets hold nothing else here). */
static long long index_bytes(void)
{
    static const char *const sets[] = {"idx:all",   "idx:running", "idx:completed",
                                       "retention", "outbox",      "timers"};
    long long n = 0;
    char key[128];

    for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
        snprintf(key, sizeof(key), "%s:%s", stack.prefix, sets[i]);
        n += usage(key);
    }
    return n;
}

static bool all_are(const char *name, const char *status)
{
    char id[64], buf[32];

    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "%s-%d", name, i);
        if (strcmp(bt_stack_status(&stack, id, buf, sizeof(buf)), status))
            return false;
    }
    return true;
}

/* Mean bytes per instance "<name>-<i>", i < N, indexes included. */
static double per_instance(const char *name)
{
    long long total = index_bytes();
    char id[64];

    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "%s-%d", name, i);
        total += instance_bytes(id);
    }
    return (double)total / N;
}

/* Entries of the outbox index: a finished instance's goes once the
 * scheduler's sweep sees its outbox empty past the grace (5 s). */
static long long outbox_index(void)
{
    redisReply *reply = bt_stack_redis(&stack, "ZCARD %s:outbox", stack.prefix);
    long long n = reply && reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1;

    freeReplyObject(reply);
    return n;
}

Test(memory, a_finished_three_step_instance_takes_at_most_1_5_kb)
{
    pid_t worker = bt_stack_worker(&stack, "flows", NULL);
    pid_t scheduler = bt_stack_scheduler(&stack);
    char id[64];
    bool ok;

    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "done-%d", i);
        cr_assert_eq(bt_stack_start_wf(&stack, "chain3", id, json_pack("{s:i}", "v", 1)),
                     0);
    }
    BT_TEST_WAIT_UNTIL(ok, all_are("done", "completed"), 60000);
    cr_assert(ok, "every instance completed");
    /* as it stays until its retention ends: out of the outbox index */
    BT_TEST_WAIT_UNTIL(ok, outbox_index() == 0, 30000);
    cr_assert(ok, "the sweep dropped the finished instances from the outbox index");
    double bytes = per_instance("done");
    fprintf(stderr, "memory: a finished three-step instance takes %.0f bytes\n", bytes);
    cr_expect_leq(bytes, FINISHED_BOUND, "a finished instance takes %.0f bytes", bytes);
    bt_test_kill9(scheduler);
    bt_test_kill9(worker);
}

/* Running: waiting for a signal, the instance holds its meta, its journal
 * entry and its history so far; nothing else. */
Test(memory, a_running_instance_takes_what_its_journal_needs)
{
    pid_t worker = bt_stack_worker(&stack, "flows", NULL);
    char id[64], key[128];
    bool ok;

    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "run-%d", i);
        cr_assert_eq(
            bt_stack_start_wf(&stack, "await_review", id, json_pack("{s:i}", "v", 1)), 0);
    }
    snprintf(key, sizeof(key), "%s:{run-%d}:journal", stack.prefix, N - 1);
    BT_TEST_WAIT_UNTIL(ok, all_are("run", "running") && usage(key) > 0, 60000);
    cr_assert(ok, "every instance running, waiting for its signal");
    double bytes = per_instance("run");
    fprintf(stderr, "memory: a running instance waiting for a signal takes %.0f bytes\n",
            bytes);
    cr_expect_leq(bytes, RUNNING_BOUND, "a running instance takes %.0f bytes", bytes);
    bt_test_kill9(worker);
}
