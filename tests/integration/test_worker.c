/* baton-worker's start-up checks, run as a deploy meets them: the real
 * binary against a real stack (redis-server and the mock cluster on
 * loopback), so that a refusal is the worker's own and not a missing
 * service. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "stack.h"

static struct bt_stack stack;

static void setup(void)
{
    cr_assert_eq(bt_stack_start(&stack, NULL), 0, "cannot start the stack");
}

static void teardown(void)
{
    bt_stack_stop(&stack);
}

/* Runs baton-worker with the stack's settings, BATON_PLUGINS emptied (an
 * inherited one must not load a plugin) and args (NULL-terminated); returns
 * its exit status, -1 when it still runs after 15 s. */
static int run_worker(const char *const *args)
{
    const char *argv[8] = {BT_BIN_DIR "/baton-worker"}, *env[12] = {NULL};
    size_t n = 0, argc = 1;
    pid_t pid;
    int status;

    while (stack.envp[n] && n < 10) {
        env[n] = stack.envp[n];
        n++;
    }
    env[n] = "BATON_PLUGINS=";
    for (; args && *args && argc < 7; args++)
        argv[argc++] = *args;
    pid = bt_test_spawn(argv, env, stack.log);
    cr_assert_gt(pid, 0);
    status = bt_test_wait(pid, 15000);
    if (status < 0)
        bt_test_kill9(pid);
    return status;
}

Test(worker, refuses_to_start_without_a_plugin, .init = setup, .fini = teardown,
     .timeout = 60)
{
    int status = run_worker(NULL);

    cr_assert_eq(status, 2, "exit status %d, see %s", status, stack.log);
    cr_assert_eq(bt_test_count_lines_with(stack.log,
                                          "msg=\"nothing to run: no workflow or activity "
                                          "registered (plugins=0); give --plugin lib.so"),
                 1, "no clear error in %s", stack.log);
    cr_expect_eq(bt_test_count_lines_with(stack.log, "partitions assigned"), 0,
                 "it joined a group first: see %s", stack.log);
}

Test(worker, refuses_to_start_when_its_plugins_register_nothing, .init = setup,
     .fini = teardown, .timeout = 60)
{
    int status =
        run_worker((const char *const[]){"--plugin", BT_PLUGIN_DIR "/empty.so", NULL});

    cr_assert_eq(status, 2, "exit status %d, see %s", status, stack.log);
    cr_assert_eq(bt_test_count_lines_with(
                     stack.log, "nothing to run: no workflow or activity registered "
                                "(plugins=1)"),
                 1, "no clear error in %s", stack.log);
}

/* SIGTERM while the worker still loads its plugins (slow_start.so takes 2 s
 * to register) is a clean stop, as at any later moment: exit 0, not the
 * default action's death by signal. */
Test(worker, a_stop_while_it_starts_is_a_clean_stop, .init = setup, .fini = teardown,
     .timeout = 60)
{
    pid_t pid = bt_stack_worker(&stack, "slow_start", NULL);
    bool loading;
    int status;

    cr_assert_gt(pid, 0);
    BT_TEST_WAIT_UNTIL(
        loading, bt_test_count_lines_with(stack.log, "slow_start: registering") == 1,
        15000);
    cr_assert(loading, "the plugin was never loaded: see %s", stack.log);
    status = bt_test_stop(pid, 15000);
    cr_assert_eq(status, 0, "exit status %d, see %s", status, stack.log);
    cr_expect_eq(bt_test_count_lines_with(stack.log, "told to stop while it loaded"), 1,
                 "no word of the early stop in %s", stack.log);
    cr_expect_eq(bt_test_count_lines_with(stack.log, "partitions assigned"), 0,
                 "it joined a group after it was told to stop: see %s", stack.log);
}

/* A Redis that would lose what baton wrote (it evicts keys when full, or
 * keeps no append-only file) is named at start, by the worker and the
 * scheduler, each setting once with what to change; the stack's own Redis
 * (AOF, noeviction) draws no word. Before, nothing said so: a Redis run as
 * a cache lost instances without a trace. */
Test(worker, a_redis_that_would_lose_data_is_named_at_start, .init = setup,
     .fini = teardown, .timeout = 60)
{
    pid_t worker, scheduler;
    bool told;

    worker = bt_stack_worker(&stack, "flows", NULL);
    cr_assert_gt(worker, 0);
    BT_TEST_WAIT_UNTIL(told, bt_test_count_lines_with(stack.log, "partitions assigned"),
                       20000);
    cr_assert(told, "the worker did not start: see %s", stack.log);
    cr_assert_eq(bt_test_count_lines_with(stack.log, "maxmemory_policy="), 0);
    cr_assert_eq(bt_test_count_lines_with(stack.log, "keeps no append-only file"), 0);
    cr_assert_eq(bt_test_stop(worker, BT_TEST_STOP_MS), 0);

    freeReplyObject(bt_stack_redis(&stack, "CONFIG SET maxmemory-policy allkeys-lru"));
    freeReplyObject(bt_stack_redis(&stack, "CONFIG SET appendonly no"));
    worker = bt_stack_worker(&stack, "flows", NULL);
    scheduler = bt_stack_scheduler(&stack);
    cr_assert(worker > 0 && scheduler > 0);
    BT_TEST_WAIT_UNTIL(
        told, bt_test_count_lines_with(stack.log, "keeps no append-only file") == 2,
        20000);
    cr_assert(told, "the missing append-only file was not named twice: see %s",
              stack.log);
    cr_assert_eq(bt_test_count_lines_with(stack.log,
                                          "(set maxmemory-policy noeviction)\" "
                                          "maxmemory_policy=allkeys-lru"),
                 2);
    cr_assert_eq(bt_test_stop(worker, BT_TEST_STOP_MS), 0);
    cr_assert_eq(bt_test_stop(scheduler, BT_TEST_STOP_MS), 0);
}
