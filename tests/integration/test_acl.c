/* Redis ACL users: baton-worker, baton-scheduler and the baton CLI against a
 * real redis-server whose default user needs another password, so that only
 * AUTH <user> <password> lets them in; the password from a file or the
 * environment, never on a command line. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "stack.h"

#define USER     "baton-app"
#define PASSWORD "pw with spaces \"and\" quotes"

static struct bt_stack stack;
static char right_file[320], wrong_file[320];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    cr_assert_not_null(f, "cannot write %s", path);
    fprintf(f, "%s\n", text);
    fclose(f);
}

static void expect_ok(redisReply *reply)
{
    cr_assert(reply && reply->type == REDIS_REPLY_STATUS, "%s",
              reply && reply->str ? reply->str : "no reply");
    freeReplyObject(reply);
}

static void setup(void)
{
    cr_assert_eq(bt_stack_start(&stack, NULL), 0, "cannot start the stack");
    /* the rules docs/operations.md recommends, on the test's key prefix;
     * the test's own connection stays authenticated as it was */
    expect_ok(bt_stack_redis(&stack,
                             "ACL SETUSER %s on >%s ~%s:* ~{%s:* &%s:* +@all -@dangerous",
                             USER, PASSWORD, stack.prefix, stack.prefix, stack.prefix));
    expect_ok(bt_stack_redis(&stack, "CONFIG SET requirepass %s", "not-for-baton"));
    snprintf(right_file, sizeof(right_file), "%s/right.pw", stack.redis.dir);
    snprintf(wrong_file, sizeof(wrong_file), "%s/wrong.pw", stack.redis.dir);
    write_file(right_file, PASSWORD);
    write_file(wrong_file, "guess");
}

static void teardown(void)
{
    bt_stack_stop(&stack);
}

/* The stack's environment plus extra (NULL-terminated) into env (16 slots). */
static const char *const *env_with(const char **env, const char *const *extra)
{
    size_t n = 0;

    for (size_t i = 0; stack.envp[i] && n < 10; i++)
        env[n++] = stack.envp[i];
    for (; extra && *extra && n < 15; extra++)
        env[n++] = *extra;
    env[n] = NULL;
    return env;
}

/* Connections of redis-server authenticated as USER. */
static int clients_as_user(void)
{
    redisReply *reply = bt_stack_redis(&stack, "CLIENT LIST");
    int n = 0;

    for (const char *p = reply && reply->str ? reply->str : "";
         (p = strstr(p, "user=" USER " ")); p++)
        n++;
    freeReplyObject(reply);
    return n;
}

Test(acl, worker_scheduler_and_cli_authenticate_as_an_acl_user, .init = setup,
     .fini = teardown, .timeout = 90)
{
    const char *env[16];
    const char *const sched_argv[] = {BT_BIN_DIR "/baton-scheduler", NULL};
    pid_t worker, sched;
    char out[8192];
    bool ok;

    /* the worker from flags (user) and a file (password); the scheduler from
     * the environment alone */
    worker =
        bt_stack_worker(&stack, "flows",
                        (const char *const[]){"--redis-user", USER,
                                              "--redis-password-file", right_file, NULL});
    sched = bt_test_spawn(
        sched_argv,
        env_with(env, (const char *const[]){"BATON_REDIS_USER=" USER,
                                            "BATON_REDIS_PASSWORD=" PASSWORD, NULL}),
        stack.log);
    cr_assert(worker > 0 && sched > 0);
    cr_assert_eq(BT_STACK_BATON(&stack, out, "start", "chain3", "--id", "acl-1",
                                "--input", "{\"v\":1}", "--wait", "--redis-user", USER,
                                "--redis-password-file", right_file),
                 0, "%s (programs: %s)", out, stack.log);
    cr_assert(strstr(out, "{\"v\":4}"), "the result: %s", out);
    /* worker (store and heartbeat) and scheduler hold connections as USER */
    BT_TEST_WAIT_UNTIL(ok, clients_as_user() >= 3, 10000);
    cr_expect(ok, "%d connections as " USER, clients_as_user());
    cr_expect_eq(bt_test_count_lines_with(stack.log, "redis refused"), 0, "see %s",
                 stack.log);
    cr_expect_eq(bt_test_stop(worker, 30000), 0);
    cr_expect_eq(bt_test_stop(sched, 30000), 0);
}

Test(acl, a_wrong_password_is_refused_with_a_clear_error, .init = setup, .fini = teardown,
     .timeout = 60)
{
    char out[8192];
    pid_t worker;
    bool ok;

    cr_assert_eq(BT_STACK_BATON(&stack, out, "list", "--redis-user", USER,
                                "--redis-password-file", wrong_file),
                 3, "%s", out);
    cr_assert(strstr(out, "redis refused the user or password: WRONGPASS") &&
                  strstr(out, "user=" USER),
              "the log line names the cause and the user: %s", out);
    cr_assert(strstr(out, "refused by Redis at") && strstr(out, "--redis-user"),
              "the CLI says what to check: %s", out);
    /* a user without a password is a usage error, before any connection */
    cr_assert_eq(BT_STACK_BATON(&stack, out, "list", "--redis-user", USER), 2, "%s", out);
    cr_assert(strstr(out, "needs a password"), "%s", out);

    worker =
        bt_stack_worker(&stack, "flows",
                        (const char *const[]){"--redis-user", USER,
                                              "--redis-password-file", wrong_file, NULL});
    cr_assert_gt(worker, 0);
    BT_TEST_WAIT_UNTIL(
        ok, bt_test_count_lines_with(stack.log, "redis refused the user or password") > 0,
        15000);
    cr_assert(ok, "the worker did not say it was refused: see %s", stack.log);
    bt_test_kill9(worker);
}
