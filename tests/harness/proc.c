/* Child processes for tests: spawned so that they die with the test process,
 * waited for with a deadline, and stopped politely or not; plus the clock and
 * the unique prefixes tests name their topics and keys with. */
#define _GNU_SOURCE /* close_range(2) */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

extern char **environ;

int64_t bt_test_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void bt_test_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
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

static void free_strv(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
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
    free_strv(v);
    v = NULL;
out:
    return v;
}

pid_t bt_test_spawn(const char *const *argv, const char *const *env, const char *log_path)
{
    /* Built before fork: only async-signal-safe calls are allowed in the
     * child of a process that may have threads. */
    char **args = strv_merge(argv, NULL);
    char **envp = env ? strv_merge((const char *const *)environ, env) : environ;
    pid_t parent = getpid(), pid = -1;
    long max_fd = sysconf(_SC_OPEN_MAX);
    int fd = -1;

    if (!args || !envp)
        goto out;
    if (log_path) {
        fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0)
            goto out;
    }
    pid = fork();
    if (pid == 0) {
        /* The death signal follows the parent thread, and a parent that is
         * already gone would never send it. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
            _exit(127);
        if (fd >= 0 && (dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0))
            _exit(127);
        /* Only stdio: a child holding a copy of a socket of the Kafka mock
         * cluster (librdkafka opens them without O_CLOEXEC) would keep a
         * connection open after the mock closed it, and a broker taken down
         * would stay up for whoever was connected. */
        if (close_range(3, ~0U, 0) < 0)
            for (long i = 3; i < max_fd; i++)
                close((int)i);
        execve(args[0], args, envp);
        _exit(127);
    }
out:
    if (fd >= 0)
        close(fd);
    free_strv(args);
    if (envp != environ)
        free_strv(envp);
    return pid;
}

static int exit_status(int status)
{
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

int bt_test_wait(pid_t pid, int timeout_ms)
{
    int64_t deadline = bt_test_now_ms() + timeout_ms;
    int status, ret = -1;

    if (pid <= 0)
        goto out;
    for (;;) {
        pid_t got = waitpid(pid, &status, WNOHANG);

        if (got == pid) {
            ret = exit_status(status);
            break;
        }
        if ((got < 0 && errno != EINTR) || bt_test_now_ms() >= deadline)
            break;
        bt_test_sleep_ms(5);
    }
out:
    return ret;
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
    int status = 0, ret = -1;
    pid_t got;

    if (pid <= 0)
        goto out;
    kill(pid, SIGTERM);
    ret = bt_test_wait(pid, timeout_ms);
    if (ret >= 0)
        goto out;
    kill(pid, SIGKILL);
    while ((got = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
        ;
    ret = got == pid ? exit_status(status) : -1;
out:
    return ret;
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
