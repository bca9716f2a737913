/* A Redis that accepts connections but never answers (a listening loopback
 * socket of the test's own that nobody reads: the kernel completes the
 * handshake, no byte ever comes back). Every command that reads or writes
 * Redis must give up with a clear error and exit 3 within 5 s. */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

static int listener = -1;
static char home[64], env_home[128], redis_addr[64];

/* Listens on a free loopback port and never accepts. Called by the test
 * once it runs: a test that skips itself gets no .fini to clean up after an
 * .init. */
static void setup(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    socklen_t len = sizeof(sa);

    listener = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(listener >= 0);
    cr_assert_eq(bind(listener, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(listen(listener, 256), 0);
    cr_assert_eq(getsockname(listener, (struct sockaddr *)&sa, &len), 0);
    snprintf(redis_addr, sizeof(redis_addr), "--redis=127.0.0.1:%d", ntohs(sa.sin_port));
    snprintf(home, sizeof(home), "/tmp/bt-silent-XXXXXX");
    cr_assert(mkdtemp(home));
    snprintf(env_home, sizeof(env_home), "BATON_HOME=%s", home);
}

static void teardown(void)
{
    char cmd[128];

    if (listener >= 0)
        close(listener);
    if (!home[0])
        return;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", home);
    cr_assert_eq(system(cmd), 0);
}

Test(cli_silent, every_redis_command_gives_up_within_5_s_with_exit_3, .fini = teardown,
     .timeout = 240)
{
    BT_TEST_RELEASE_ONLY();
    setup();
    static const char *const commands[][5] = {
        {"describe", "x"},
        {"history", "x"},
        {"history", "x", "--follow"},
        {"list"},
        {"stats"},
        {"signal", "x", "review"},
        {"cancel", "x"},
        {"unblock", "x"},
        {"start", "t", "--at", "+1m"},
        {"schedule", "list"},
        {"schedule", "add", "n", "--cron=* * * * *", "--workflow=t"},
        {"ratelimit", "list"},
        {"concurrency", "get", "k"},
        {"dlq", "list"},
        {"replay-check", "--plugin", BT_PLUGIN_DIR "/flows.so"},
    };
    enum { N = sizeof(commands) / sizeof(commands[0]) };
    const char *env[] = {env_home, NULL};
    char log[N][128], out[4096];
    pid_t pids[N];
    int64_t t0[N];

    /* all at once: each must give up within 5 s of its own start */
    for (size_t i = 0; i < N; i++) {
        const char *argv[10] = {BT_BIN_DIR "/baton"};
        int argc = 1;
        for (int k = 0; k < 5 && commands[i][k]; k++)
            argv[argc++] = commands[i][k];
        argv[argc++] = redis_addr;
        argv[argc] = NULL;
        snprintf(log[i], sizeof(log[i]), "%s/out-%zu", home, i);
        t0[i] = bt_test_now_ms();
        pids[i] = bt_test_spawn(argv, env, log[i]);
        cr_assert_gt(pids[i], 0);
    }
    for (size_t i = 0; i < N; i++) {
        int64_t left = t0[i] + 5000 - bt_test_now_ms();
        int rc = bt_test_wait(pids[i], left > 0 ? (int)left : 0);
        int64_t took = bt_test_now_ms() - t0[i];
        if (rc < 0)
            bt_test_kill9(pids[i]);
        FILE *f = fopen(log[i], "r");
        out[f ? fread(out, 1, sizeof(out) - 1, f) : 0] = '\0';
        if (f)
            fclose(f);
        cr_assert_eq(rc, 3, "baton %s %s: exit %d after %lld ms: %s", commands[i][0],
                     commands[i][1] ? commands[i][1] : "", rc, (long long)took, out);
        cr_assert(strstr(out, "Redis") && strstr(out, "no answer within 3000 ms"),
                  "baton %s: a message naming Redis and the timeout: %s", commands[i][0],
                  out);
    }
}
