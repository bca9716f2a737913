/* Child processes for tests: spawned so that they die with the test process,
 * waited for with a deadline, and stopped politely or not; plus the clock and
 * the unique prefixes tests name their topics and keys with. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "harness.h"
#include "proc.h"

extern char **environ;

int64_t bt_test_now_ms(void)
{
    return bt_clock_mono_ms();
}

void bt_test_sleep_ms(int ms)
{
    int64_t end = bt_test_now_ms() + ms;

    for (int64_t left = ms; left > 0; left = end - bt_test_now_ms())
        bt_clock_sleep_ms((int)left); /* the whole time, signals or not */
}

/* Each call gets its own slot of a ring, so a prefix stays valid for the next
 * 63 calls from any thread: longer than any test keeps one. */
const char *bt_test_prefix(void)
{
    static char ring[64][32];
    static atomic_uint counter;
    unsigned n = atomic_fetch_add(&counter, 1);

    snprintf(ring[n % 64], sizeof(ring[0]), "t%ldx%u", (long)getpid(), n);
    return ring[n % 64];
}

/* A NULL-terminated copy of a then b, leaving out the entries of a whose
 * "NAME=" b sets again (so the caller's environment can be overridden). */
static char **strv_merge(const char *const *a, const char *const *b)
{
    size_t na = 0, nb = 0, n = 0;
    char **v = NULL;

    while (a && a[na])
        na++;
    while (b && b[nb])
        nb++;
    v = calloc(na + nb + 1, sizeof(*v));
    if (!v)
        goto fail;
    for (size_t i = 0; i < na; i++) {
        const char *eq = strchr(a[i], '=');
        size_t len = eq ? (size_t)(eq - a[i]) + 1 : strlen(a[i]);
        int overridden = 0;

        for (size_t j = 0; j < nb && !overridden; j++)
            overridden = strncmp(a[i], b[j], len) == 0;
        if (!overridden && !(v[n++] = strdup(a[i])))
            goto fail;
    }
    for (size_t j = 0; j < nb; j++)
        if (!(v[n++] = strdup(b[j])))
            goto fail;
    goto out;
fail:
    bt_strv_free(v);
    v = NULL;
out:
    return v;
}

pid_t bt_test_spawn(const char *const *argv, const char *const *env, const char *log_path)
{
    /* dies with the test process, even one killed by criterion's timeout */
    const struct bt_spawn how = {.log = log_path, .append = true, .deathsig = SIGKILL};
    char **args = strv_merge(argv, NULL);
    char **envp = env ? strv_merge((const char *const *)environ, env) : environ;
    pid_t pid = args && envp ? bt_proc_spawn(args, envp, &how) : -1;

    bt_strv_free(args);
    if (envp != environ)
        bt_strv_free(envp);
    return pid;
}

int bt_test_wait(pid_t pid, int timeout_ms)
{
    return bt_proc_wait(pid, timeout_ms);
}

void bt_test_kill9(pid_t pid)
{
    /* kill(0) and kill(-1) would signal far more than one child. */
    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

int bt_test_stop(pid_t pid, int timeout_ms)
{
    return bt_proc_stop(pid, timeout_ms, false);
}

size_t bt_test_count_lines_with(const char *path, const char *text)
{
    char line[2048];
    size_t n = 0;
    FILE *f = fopen(path, "r");

    while (f && fgets(line, sizeof(line), f))
        n += strstr(line, text) != NULL;
    if (f)
        fclose(f);
    return n;
}

char *bt_test_file_tail(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "r");
    long size;

    buf[0] = '\0';
    if (!f)
        return buf;
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, size > (long)n - 1 ? size - (long)n + 1 : 0, SEEK_SET);
    buf[fread(buf, 1, n - 1, f)] = '\0';
    fclose(f);
    return buf;
}
