/* tests/harness/proc.c: the process helpers every end-to-end test relies on. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static pid_t sh(const char *script, const char *const *env, const char *log_path)
{
    const char *argv[] = {"/bin/sh", "-c", script, NULL};
    pid_t pid = bt_test_spawn(argv, env, log_path);

    cr_assert_gt(pid, 0, "spawn failed");
    return pid;
}

Test(proc, waits_for_the_exit_status_and_times_out_on_a_running_child)
{
    const char *missing[] = {"/nonexistent/program", NULL};
    pid_t pid;

    cr_assert_eq(bt_test_wait(sh("exit 3", NULL, NULL), 5000), 3);
    cr_assert_eq(bt_test_wait(bt_test_spawn(missing, NULL, NULL), 5000), 127);
    pid = sh("exec sleep 30", NULL, NULL);
    cr_assert_eq(bt_test_wait(pid, 50), -1, "a sleeping child counted as exited");
    cr_assert_eq(bt_test_stop(pid, 5000), 128 + SIGTERM);
}

static bool file_has(const char *path, const char *text)
{
    char buf[256] = "";
    FILE *f = fopen(path, "r");

    if (!f)
        return false;
    fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    return strstr(buf, text) != NULL;
}

Test(proc, stop_kills_a_child_that_ignores_sigterm)
{
    char dir[] = "/tmp/bt-proc-XXXXXX", path[64];
    bool ready;
    pid_t pid;

    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/log", dir);
    pid = sh("trap '' TERM; echo ready; while :; do sleep 1; done", NULL, path);
    /* A SIGTERM sent before the trap is set would end it. */
    BT_TEST_WAIT_UNTIL(ready, file_has(path, "ready"), 5000);
    unlink(path);
    rmdir(dir);
    cr_assert(ready, "the child never set its trap");
    cr_assert_eq(bt_test_stop(pid, 200), 128 + SIGKILL);
    bt_test_kill9(sh("exec sleep 30", NULL, NULL));
}

Test(proc, passes_extra_environment_and_appends_output_to_the_log)
{
    char dir[] = "/tmp/bt-proc-XXXXXX", path[64], buf[256] = "";
    const char *env[] = {"BT_TEST_GREETING=hello", "HOME=/elsewhere", NULL};
    FILE *f;

    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/log", dir);
    cr_assert_eq(bt_test_wait(sh("echo first", NULL, path), 5000), 0);
    cr_assert_eq(
        bt_test_wait(sh("echo $BT_TEST_GREETING $HOME; echo err >&2", env, path), 5000),
        0);
    f = fopen(path, "r");
    cr_assert_not_null(f);
    cr_assert_gt(fread(buf, 1, sizeof(buf) - 1, f), 0);
    fclose(f);
    unlink(path);
    rmdir(dir);
    cr_assert_str_eq(buf, "first\nhello /elsewhere\nerr\n");
}

Test(proc, prefixes_are_unique_per_call)
{
    char first[32], want[32];
    const char *second;

    snprintf(first, sizeof(first), "%s", bt_test_prefix());
    second = bt_test_prefix();
    snprintf(want, sizeof(want), "t%ldx", (long)getpid());
    cr_assert_eq(strncmp(first, want, strlen(want)), 0, "%s", first);
    cr_assert_str_neq(first, second);
}
