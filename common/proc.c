/* Child processes (proc.h). */
#define _GNU_SOURCE /* close_range */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "proc.h"

pid_t bt_proc_spawn(char *const argv[], char *const envp[], const struct bt_spawn *how)
{
    pid_t parent = getpid(), pid;
    long max_fd = sysconf(_SC_OPEN_MAX);
    int log = -1, in = -1, saved;
    sigset_t none, all, old;

    sigemptyset(&none);
    if (how->log &&
        (log = open(how->log,
                    O_WRONLY | O_CREAT | O_CLOEXEC | (how->append ? O_APPEND : O_TRUNC),
                    0600)) < 0)
        return -1;
    if (how->stdin_null && (in = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
        saved = errno;
        if (log >= 0)
            close(log);
        errno = saved;
        return -1;
    }
    /* signals wait until the child has dropped the parent's handlers: one
     * sent to it before its exec would run a copy of a handler (a flag set in
     * memory the exec throws away) and be lost */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    if ((pid = fork()) == 0) {
        for (int sig = 1; sig < NSIG; sig++) {
            struct sigaction sa;
            if (sig != SIGKILL && sig != SIGSTOP && sigaction(sig, NULL, &sa) == 0 &&
                sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN)
                signal(sig, SIG_DFL);
        }
        if (how->own_group)
            setpgid(0, 0);
        /* the death signal follows the parent thread, and a parent that is
         * already gone would never send it */
        if (prctl(PR_SET_PDEATHSIG, how->deathsig) < 0 || getppid() != parent)
            _exit(127);
        if ((log >= 0 &&
             (dup2(log, STDOUT_FILENO) < 0 || dup2(log, STDERR_FILENO) < 0)) ||
            (in >= 0 && dup2(in, STDIN_FILENO) < 0))
            _exit(127);
        /* only stdio: librdkafka opens its sockets without O_CLOEXEC */
        if (close_range(3, ~0U, 0) < 0)
            for (long i = 3; i < max_fd; i++)
                close((int)i);
        signal(SIGPIPE, SIG_DFL);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execve(argv[0], argv, envp);
        _exit(127);
    }
    saved = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid > 0 && how->own_group)
        setpgid(pid, pid); /* here too: the parent may signal the group at once */
    if (log >= 0)
        close(log);
    if (in >= 0)
        close(in);
    errno = saved;
    return pid;
}

static int exit_status(int status)
{
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

int bt_proc_wait(pid_t pid, int timeout_ms)
{
    int64_t deadline = bt_clock_mono_ms() + timeout_ms;
    int status;

    if (pid <= 0)
        return -1;
    for (;;) {
        pid_t got = waitpid(pid, &status, WNOHANG);
        if (got == pid)
            return exit_status(status);
        if ((got < 0 && errno != EINTR) || bt_clock_mono_ms() >= deadline)
            return -1;
        bt_clock_sleep_ms(5);
    }
}

int bt_proc_stop(pid_t pid, int timeout_ms, bool group)
{
    int status, ret;
    pid_t got;

    /* kill(0) and kill(-1) would signal far more than one child */
    if (pid <= 0)
        return -1;
    kill(pid, SIGTERM);
    if ((ret = bt_proc_wait(pid, timeout_ms)) >= 0)
        return ret;
    kill(group ? -pid : pid, SIGKILL);
    while ((got = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
        ;
    return got == pid ? exit_status(status) : -1;
}

void bt_strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}
