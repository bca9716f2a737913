/* Packaging as a user meets it: this build installed into a temporary prefix
 * (`cmake --install`), examples/out-of-tree built against that prefix with
 * pkg-config and with CMake's find_package (both link with
 * -Wl,--no-undefined), and each plugin loaded by the installed baton-worker,
 * which must take libbaton from the prefix, and its workflow run to the end
 * with the installed scheduler and CLI. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "baton.h"
#include "install.h"
#include "stack.h"

static struct bt_stack stack;
static char prefix[320], work[320], blog[320];

static void setup(void)
{
    char tail[4096];

    cr_assert_eq(bt_stack_start(&stack, NULL), 0, "cannot start the stack");
    snprintf(prefix, sizeof(prefix), "%s/prefix", stack.redis.dir);
    snprintf(work, sizeof(work), "%s/work", stack.redis.dir);
    snprintf(blog, sizeof(blog), "%s/build.log", stack.redis.dir);
    cr_assert_eq(bt_test_install(prefix, blog), 0, "cmake --install failed:\n%s",
                 bt_test_tail(blog, tail, sizeof(tail)));
}

static void teardown(void)
{
    bt_stack_stop(&stack);
}

static void assert_installed(const char *rel)
{
    char path[512];

    snprintf(path, sizeof(path), "%s/%s", prefix, rel);
    cr_assert_eq(access(path, F_OK), 0, "%s is not installed", rel);
}

/* Whether process pid has mapped a libbaton from under the prefix. */
static bool maps_libbaton_from_prefix(pid_t pid)
{
    char maps[64], line[1024], want[400];
    bool found = false;
    FILE *f;

    snprintf(maps, sizeof(maps), "/proc/%d/maps", (int)pid);
    snprintf(want, sizeof(want), "%s/lib/libbaton.so", prefix);
    if (!(f = fopen(maps, "r")))
        return false;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, want) != NULL;
    fclose(f);
    return found;
}

/* Runs workflow "hello" as id on the installed worker loading plugin, started
 * and awaited with the installed CLI. */
static void run_hello(const char *plugin, const char *id)
{
    char bin[400], cli[400], out[400], text[4096];
    pid_t worker;
    int status;

    snprintf(bin, sizeof(bin), "%s/bin/baton-worker", prefix);
    snprintf(cli, sizeof(cli), "%s/bin/baton", prefix);
    snprintf(out, sizeof(out), "%s/start-%s.out", stack.redis.dir, id);
    worker = bt_test_spawn((const char *const[]){bin, "--plugin", plugin, NULL},
                           stack.envp, stack.log);
    cr_assert_gt(worker, 0);
    status = bt_test_wait(
        bt_test_spawn((const char *const[]){cli, "start", "hello", "--id", id, "--input",
                                            "{\"name\":\"ada\"}", "--wait", "--timeout",
                                            "60", NULL},
                      stack.envp, out),
        90000);
    bt_test_tail(out, text, sizeof(text));
    cr_assert_eq(status, 0, "baton start %s exited %d: %s\nprograms:\n%s", id, status,
                 text, bt_test_tail(stack.log, (char[4096]){0}, 4096));
    /* the first attempt fails by design: the scheduler's retry answered */
    cr_assert(strstr(text, "\"greeting\":\"hello, ada\"") &&
                  strstr(text, "\"attempt\":2"),
              "%s", text);
    cr_assert(maps_libbaton_from_prefix(worker),
              "the installed worker did not take libbaton from %s/lib", prefix);
    cr_assert_eq(bt_test_stop(worker, BT_TEST_STOP_MS), 0,
                 "the installed worker exited non-zero");
}

Test(install, an_out_of_tree_plugin_builds_with_pkg_config_and_cmake_and_runs_installed,
     .init = setup, .fini = teardown, .timeout = 240)
{
    static const char *const files[] = {"bin/baton",
                                        "bin/baton-worker",
                                        "bin/baton-scheduler",
                                        "lib/libbaton.so",
                                        "include/baton/baton.h",
                                        "lib/pkgconfig/baton.pc",
                                        "lib/cmake/baton/batonConfig.cmake",
                                        "lib/cmake/baton/batonConfigVersion.cmake"};
    char tail[4096], plugin[400], sched[400];
    pid_t scheduler;

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        assert_installed(files[i]);
    cr_assert_eq(bt_test_sh(blog, 120000,
                            "cp -r '%s/examples/out-of-tree' '%s' && cd '%s' && "
                            "PKG_CONFIG_PATH='%s/lib/pkgconfig' make",
                            BT_SOURCE_DIR, work, work, prefix),
                 0, "make with pkg-config failed:\n%s", bt_test_tail(blog, tail, 4096));
    cr_assert_eq(
        bt_test_sh(blog, 180000,
                   "'%s' -S '%s' -B '%s/cmake-build' -DCMAKE_PREFIX_PATH='%s' && "
                   "'%s' --build '%s/cmake-build'",
                   BT_CMAKE_COMMAND, work, work, prefix, BT_CMAKE_COMMAND, work),
        0, "the CMake build failed:\n%s", bt_test_tail(blog, tail, 4096));

    snprintf(sched, sizeof(sched), "%s/bin/baton-scheduler", prefix);
    scheduler = bt_test_spawn((const char *const[]){sched, NULL}, stack.envp, stack.log);
    cr_assert_gt(scheduler, 0);
    snprintf(plugin, sizeof(plugin), "%s/hello.so", work);
    run_hello(plugin, "hello-pkg-config");
    snprintf(plugin, sizeof(plugin), "%s/cmake-build/hello.so", work);
    run_hello(plugin, "hello-cmake");
    cr_assert_eq(bt_test_stop(scheduler, BT_TEST_STOP_MS), 0,
                 "the installed scheduler exited non-zero");
}

Test(install, the_worker_refuses_a_plugin_built_for_another_abi, .init = setup,
     .fini = teardown, .timeout = 60)
{
    char bin[400], log[400], text[4096], want[64];
    int status;

    snprintf(bin, sizeof(bin), "%s/bin/baton-worker", prefix);
    snprintf(log, sizeof(log), "%s/abi.log", stack.redis.dir);
    status = bt_test_wait(
        bt_test_spawn(
            (const char *const[]){bin, "--plugin", BT_PLUGIN_DIR "/abi_other.so", NULL},
            stack.envp, log),
        30000);
    bt_test_tail(log, text, sizeof(text));
    snprintf(want, sizeof(want), "built for baton ABI %d", BATON_ABI_VERSION + 1);
    cr_assert(status > 0 && status < 128, "the worker exited %d: %s", status, text);
    cr_assert(strstr(text, want) && strstr(text, "abi_other.so"), "%s", text);
}
