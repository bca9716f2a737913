/* A run aborted by the embedded Kafka cluster's own assertion, run again.
 *
 * The cluster (librdkafka 2.0.2's mock) lives in the process that drives the
 * run, and its group coordinator can abort on an assertion when pauses and
 * kills make it reuse a member's id (docs/chaos.md). That says nothing
 * about baton, and it ends the run with no verdict. So the run goes on in a
 * child whose stderr passes through here: when it aborts and its last words
 * name the coordinator's source (rdkafka_mock), the attempt is dropped (its
 * logs with it) and the run starts again, at most CHAOS_ATTEMPTS times. Any
 * other abort, and every verdict, is the child's exit status as it is. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chaos.h"
#include "tree.h"

#define CHAOS_ATTEMPTS 5

static volatile sig_atomic_t child_pid;

/* SIGINT and SIGTERM are the child's to act on: it stops its run and
 * reports what it has. */
static void forward(int sig)
{
    if (child_pid > 0)
        kill((pid_t)child_pid, sig);
}

struct attempt {
    char dir[256];   /* "chaos: logs in <dir>" */
    bool mock_abort; /* its stderr named the embedded coordinator's assertion */
};

/* Copies the child's stderr to ours line by line, noting its logs' directory
 * and whether the embedded coordinator asserted. */
static void relay(int fd, struct attempt *a)
{
    char line[4096];
    FILE *f = fdopen(fd, "r");

    if (!f) {
        close(fd);
        return;
    }
    for (;;) {
        if (!fgets(line, sizeof(line), f)) {
            if (ferror(f) && errno == EINTR) {
                clearerr(f);
                continue;
            }
            break;
        }
        fputs(line, stderr);
        if (!strncmp(line, "chaos: logs in ", 15))
            sscanf(line + 15, "%255s", a->dir);
        if (strstr(line, "rdkafka_mock") && strstr(line, "Assertion"))
            a->mock_abort = true;
    }
    fclose(f);
}

/* One attempt in a child; returns its exit status, CHAOS_EXIT_ABORT when it
 * died of an abort, or -1 when it could not be started. */
static int attempt(int (*body)(int, char **), int argc, char **argv, int n,
                   struct attempt *a)
{
    char num[16];
    int pipefd[2], status;
    pid_t pid;

    if (pipe(pipefd) < 0)
        return -1;
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        close(pipefd[0]);
        close(pipefd[1]);
        return -1;
    }
    if (pid == 0) {
        close(pipefd[0]);
        dup2(pipefd[1], STDERR_FILENO);
        close(pipefd[1]);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        snprintf(num, sizeof(num), "%d", n);
        setenv("BATON_CHAOS_ATTEMPT", num, 1); /* for the failpoints (run.c) */
        exit(body(argc, argv));
    }
    child_pid = pid;
    close(pipefd[1]);
    relay(pipefd[0], a);
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    child_pid = 0;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT ? CHAOS_EXIT_ABORT : 2;
}

int chaos_attempts(int (*body)(int, char **), int argc, char **argv)
{
    struct sigaction sa = {.sa_handler = forward};

    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    for (int n = 1;; n++) {
        struct attempt a = {0};
        int ret = attempt(body, argc, argv, n, &a);

        if (ret < 0) {
            perror("baton-chaos: cannot start the run");
            return 2;
        }
        if (ret != CHAOS_EXIT_ABORT)
            return ret;
        if (!a.mock_abort || n == CHAOS_ATTEMPTS) {
            fprintf(stderr,
                    "baton-chaos: the run aborted (attempt %d of %d); no verdict\n", n,
                    CHAOS_ATTEMPTS);
            return 2;
        }
        fprintf(stderr,
                "baton-chaos: attempt %d of %d aborted by the embedded Kafka cluster's "
                "own assertion (docs/chaos.md): no verdict about baton; its logs "
                "dropped, running again\n",
                n, CHAOS_ATTEMPTS);
        if (!strncmp(a.dir, "/tmp/baton-chaos-", 17))
            bt_remove_tree(a.dir);
    }
}
